//! The container layer (SPEC §1): zstd data frames and skippable checkpoint frames.

use std::io::{self, Write};

use zstd_safe::zstd_sys::ZSTD_EndDirective as EndDirective;
use zstd_safe::{CCtx, CParameter, DCtx, InBuffer, OutBuffer, ResetDirective};

use crate::error::ContainerError;

/// Magic number of a zstd data frame (RFC 8878 §3.1.1), little-endian on disk.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Magic number of a sealcast checkpoint frame: skippable frame variant 5 (RFC 8878 §3.1.2).
pub const CHECKPOINT_MAGIC: u32 = 0x184D_2A55;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_BASE: u32 = 0x184D_2A50;
/// Largest checkpoint payload a reader accepts, bytes (SPEC §8).
pub const MAX_CHECKPOINT_PAYLOAD: usize = 4096;
/// Largest decompressed data-frame content a reader accepts, bytes (SPEC §8).
pub const MAX_FRAME_CONTENT: usize = 16 << 20;

/// Kind of a frame in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A zstd data frame; [`Frame::bytes`] is the whole compressed frame.
    Data,
    /// A checkpoint frame; [`Frame::bytes`] is the payload (the checkpoint note).
    Checkpoint,
}

/// One frame found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Offset of the frame's first byte in the compressed file.
    pub offset: u64,
    /// Length of the whole frame on disk, header included, in bytes.
    pub len: u64,
    /// What the frame is.
    pub kind: FrameKind,
    /// Compressed frame (data) or payload (checkpoint).
    pub bytes: &'a [u8],
}

/// Iterator over the frames of a compressed recording. After the first error it yields nothing
/// more; the error's offset tells where the readable prefix ends.
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
}

/// Walk the frames of `data` (a whole `.cast.zst` file, or a prefix of one).
pub fn scan(data: &[u8]) -> Scanner<'_> {
    Scanner {
        data,
        pos: 0,
        done: false,
    }
}

impl<'a> Scanner<'a> {
    /// Offset of the next unread byte.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }

    fn next_frame(&mut self) -> Result<Option<Frame<'a>>, ContainerError> {
        let rest = &self.data[self.pos..];
        let offset = self.pos as u64;
        if rest.is_empty() {
            return if self.pos == 0 {
                Err(ContainerError::Empty)
            } else {
                Ok(None)
            };
        }
        if rest.len() < 4 {
            return Err(ContainerError::Truncated {
                offset,
                available: rest.len() as u64,
            });
        }
        let magic = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if magic == ZSTD_MAGIC {
            let n = zstd_safe::find_frame_compressed_size(rest).map_err(|code| {
                let reason = zstd_safe::get_error_name(code);
                if reason.contains("Src size") || reason.contains("truncated") {
                    ContainerError::Truncated {
                        offset,
                        available: rest.len() as u64,
                    }
                } else {
                    ContainerError::Zstd {
                        offset,
                        reason: reason.to_string(),
                    }
                }
            })?;
            self.pos += n;
            return Ok(Some(Frame {
                offset,
                len: n as u64,
                kind: FrameKind::Data,
                bytes: &rest[..n],
            }));
        }
        if magic & SKIPPABLE_MASK == SKIPPABLE_BASE {
            if rest.len() < 8 {
                return Err(ContainerError::Truncated {
                    offset,
                    available: rest.len() as u64,
                });
            }
            let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as u64;
            if magic != CHECKPOINT_MAGIC {
                return Err(ContainerError::UnexpectedSkippable {
                    offset,
                    variant: (magic & 0xF) as u8,
                });
            }
            if len > MAX_CHECKPOINT_PAYLOAD as u64 {
                return Err(ContainerError::OversizedCheckpoint { offset, len });
            }
            if (rest.len() as u64) < 8 + len {
                return Err(ContainerError::Truncated {
                    offset,
                    available: rest.len() as u64,
                });
            }
            let end = 8 + len as usize;
            self.pos += end;
            return Ok(Some(Frame {
                offset,
                len: end as u64,
                kind: FrameKind::Checkpoint,
                bytes: &rest[8..end],
            }));
        }
        let hint = if rest[0] == b'{' {
            " (looks like an uncompressed asciicast file; sealcast recordings are zstd-compressed .cast.zst)"
        } else if rest.starts_with(b"\x1f\x8b") {
            " (looks like gzip)"
        } else {
            ""
        };
        Err(ContainerError::BadMagic {
            offset,
            magic,
            hint,
        })
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Result<Frame<'a>, ContainerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_frame() {
            Ok(Some(f)) => Some(Ok(f)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Bytes of a checkpoint frame carrying `payload`: magic, u32 LE length, payload.
///
/// # Panics
/// Never for payloads up to [`MAX_CHECKPOINT_PAYLOAD`]; callers build payloads, not users.
pub fn skippable_frame(payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.extend_from_slice(&CHECKPOINT_MAGIC.to_le_bytes());
    v.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// A reusable zstd decompression context for data frames (SPEC §1). Holding one avoids
/// re-allocating zstd's window for every frame; it carries no data between frames.
///
/// Every call decodes through a fixed 128 KiB buffer and counts what each zstd call
/// returned, so a frame is refused as soon as its content passes [`MAX_FRAME_CONTENT`]
/// (SPEC §8): memory never grows past the limit plus one chunk, and the limit is exact.
pub struct Decompressor {
    dctx: DCtx<'static>,
    chunk: Box<[u8]>,
}

/// Output chunk of one zstd call, bytes (`ZSTD_DStreamOutSize` is 128 KiB).
const CHUNK: usize = 128 * 1024;

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decompressor")
    }
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Decompressor {
    /// A new context.
    pub fn new() -> Decompressor {
        Decompressor {
            dctx: DCtx::create(),
            chunk: vec![0; CHUNK].into_boxed_slice(),
        }
    }

    /// Decode as much of `frame` as zstd can, appending to `out`; stops at the first error.
    /// Returns `Ok(())` when the frame ended cleanly (checksum verified). Past
    /// [`MAX_FRAME_CONTENT`] bytes of content it stops with [`ContainerError::OversizedFrame`],
    /// having appended at most the limit.
    fn decode_into(
        &mut self,
        frame: &[u8],
        offset: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ContainerError> {
        let dctx = &mut self.dctx;
        let _ = dctx.reset(ResetDirective::SessionOnly);
        let mut input = InBuffer::around(frame);
        let mut produced = 0usize;
        loop {
            let before_in = input.pos();
            let mut output = OutBuffer::around(&mut self.chunk[..]);
            let r = dctx.decompress_stream(&mut output, &mut input);
            let n = output.pos();
            // Checked where each call returns, the last one included: content is counted,
            // never estimated from a header.
            produced += n;
            if produced > MAX_FRAME_CONTENT {
                let keep = n - (produced - MAX_FRAME_CONTENT);
                out.extend_from_slice(&self.chunk[..keep]);
                return Err(ContainerError::OversizedFrame { offset });
            }
            out.extend_from_slice(&self.chunk[..n]);
            let hint = r.map_err(|code| ContainerError::Zstd {
                offset,
                reason: zstd_safe::get_error_name(code).to_string(),
            })?;
            if hint == 0 {
                return Ok(());
            }
            // No progress possible: the frame ends before zstd says it is complete.
            if n == 0 && (input.pos() == before_in || input.pos() == frame.len()) {
                return Err(ContainerError::Truncated {
                    offset,
                    available: frame.len() as u64,
                });
            }
        }
    }

    /// Decompress one complete data frame (as returned by [`scan`]) and append its content to
    /// `out`. `offset` is only used in errors.
    ///
    /// # Errors
    /// [`ContainerError::Zstd`] on corrupt data or content-checksum mismatch,
    /// [`ContainerError::Truncated`] if the frame ends early, [`ContainerError::OversizedFrame`]
    /// past [`MAX_FRAME_CONTENT`].
    pub fn frame(
        &mut self,
        frame: &[u8],
        offset: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), ContainerError> {
        self.decode_into(frame, offset, out)
    }

    /// Decompress what can be recovered from the start of a truncated or damaged frame (a
    /// crash tail), appending to `out`. Returns the number of bytes appended; never fails.
    pub fn partial(&mut self, frame: &[u8], out: &mut Vec<u8>) -> usize {
        let before = out.len();
        let _ = self.decode_into(frame, 0, out);
        out.len() - before
    }
}

/// [`Decompressor::frame`] with a fresh context (convenient for one-off frames).
///
/// # Errors
/// As [`Decompressor::frame`].
pub fn decompress_frame(
    frame: &[u8],
    offset: u64,
    out: &mut Vec<u8>,
) -> Result<(), ContainerError> {
    Decompressor::new().frame(frame, offset, out)
}

/// [`Decompressor::partial`] with a fresh context.
pub fn decompress_partial(frame: &[u8], out: &mut Vec<u8>) -> usize {
    Decompressor::new().partial(frame, out)
}

/// Streaming compressor that packs lines into zstd data frames (SPEC §1), reusing one zstd
/// context. Compressed bytes go to the `impl Write` given to each call; nothing is buffered
/// beyond zstd's own block buffer (≤ 128 KiB).
pub struct FrameCompressor {
    cctx: CCtx<'static>,
    out: Vec<u8>,
    open: bool,
}

impl std::fmt::Debug for FrameCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameCompressor")
            .field("open", &self.open)
            .finish()
    }
}

fn zerr(code: usize) -> io::Error {
    io::Error::other(format!("zstd: {}", zstd_safe::get_error_name(code)))
}

impl FrameCompressor {
    /// A compressor at zstd `level` (1–19; sealcast uses 3) with content checksums on.
    ///
    /// # Errors
    /// If zstd rejects the parameters.
    pub fn new(level: i32) -> io::Result<Self> {
        let mut cctx = CCtx::create();
        cctx.set_parameter(CParameter::CompressionLevel(level))
            .map_err(zerr)?;
        cctx.set_parameter(CParameter::ChecksumFlag(true))
            .map_err(zerr)?;
        Ok(FrameCompressor {
            cctx,
            out: Vec::with_capacity(CCtx::out_size()),
            open: false,
        })
    }

    /// True if a frame has been started and not yet ended.
    pub fn frame_open(&self) -> bool {
        self.open
    }

    fn run(&mut self, data: &[u8], mode: EndDirective, w: &mut impl Write) -> io::Result<()> {
        let mut input = InBuffer::around(data);
        loop {
            self.out.clear();
            let remaining = {
                let mut output = OutBuffer::around(&mut self.out);
                self.cctx
                    .compress_stream2(&mut output, &mut input, mode)
                    .map_err(zerr)?
            };
            if !self.out.is_empty() {
                w.write_all(&self.out)?;
            }
            let input_done = input.pos() == data.len();
            match mode {
                EndDirective::ZSTD_e_continue if input_done => return Ok(()),
                EndDirective::ZSTD_e_flush | EndDirective::ZSTD_e_end
                    if input_done && remaining == 0 =>
                {
                    return Ok(())
                }
                _ => {}
            }
        }
    }

    /// Compress `line` followed by LF into the current frame (starting one if needed).
    ///
    /// # Errors
    /// I/O errors from `w`, or zstd errors.
    pub fn write_line(&mut self, line: &[u8], w: &mut impl Write) -> io::Result<()> {
        self.open = true;
        self.run(line, EndDirective::ZSTD_e_continue, w)?;
        self.run(b"\n", EndDirective::ZSTD_e_continue, w)
    }

    /// Make everything written so far decodable from the file (a zstd block flush), without
    /// ending the frame. Used when the session goes idle, so a crash loses less.
    ///
    /// # Errors
    /// I/O errors from `w`, or zstd errors.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<()> {
        if self.open {
            self.run(&[], EndDirective::ZSTD_e_flush, w)?;
        }
        Ok(())
    }

    /// End the current frame (writes the frame epilogue and content checksum). No-op when no
    /// frame is open.
    ///
    /// # Errors
    /// I/O errors from `w`, or zstd errors.
    pub fn end_frame(&mut self, w: &mut impl Write) -> io::Result<()> {
        if self.open {
            self.run(&[], EndDirective::ZSTD_e_end, w)?;
            self.open = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(lines_per_frame: &[&[&str]]) -> Vec<u8> {
        let mut c = FrameCompressor::new(3).unwrap();
        let mut file = Vec::new();
        for (i, frame) in lines_per_frame.iter().enumerate() {
            for l in frame.iter() {
                c.write_line(l.as_bytes(), &mut file).unwrap();
            }
            c.end_frame(&mut file).unwrap();
            file.extend_from_slice(&skippable_frame(format!("cp{i}").as_bytes()));
        }
        file
    }

    #[test]
    fn frames_round_trip_and_stock_zstd_reads_the_concatenation() {
        let file = build(&[&["a", "b"], &["c"]]);
        let frames: Vec<_> = scan(&file).collect::<Result<_, _>>().unwrap();
        let kinds: Vec<_> = frames.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                FrameKind::Data,
                FrameKind::Checkpoint,
                FrameKind::Data,
                FrameKind::Checkpoint
            ]
        );
        assert_eq!(frames[1].bytes, b"cp0");
        let mut out = Vec::new();
        decompress_frame(frames[0].bytes, 0, &mut out).unwrap();
        decompress_frame(frames[2].bytes, frames[2].offset, &mut out).unwrap();
        assert_eq!(out, b"a\nb\nc\n");
        // The reference decoder skips the skippable frames.
        assert_eq!(zstd::decode_all(&file[..]).unwrap(), b"a\nb\nc\n");
    }

    #[test]
    fn truncation_and_garbage_are_reported_with_offsets() {
        let file = build(&[&["hello world"; 50]]);
        let data_len = scan(&file).next().unwrap().unwrap().len as usize;
        let cut = &file[..data_len - 3];
        let err = scan(cut).next().unwrap().unwrap_err();
        assert!(
            matches!(err, ContainerError::Truncated { offset: 0, .. }),
            "{err:?}"
        );
        let mut out = Vec::new();
        decompress_partial(cut, &mut out);
        assert!(out.starts_with(b"hello world\n"));

        assert_eq!(
            scan(b"").next().unwrap().unwrap_err(),
            ContainerError::Empty
        );
        let e = scan(b"{\"version\":3}").next().unwrap().unwrap_err();
        assert!(e.to_string().contains("uncompressed asciicast"), "{e}");
        let mut other = file.clone();
        other.extend_from_slice(&0x184D_2A51u32.to_le_bytes());
        other.extend_from_slice(&0u32.to_le_bytes());
        let last = scan(&other).last().unwrap().unwrap_err();
        assert!(matches!(
            last,
            ContainerError::UnexpectedSkippable { variant: 1, .. }
        ));
    }

    #[test]
    fn flipped_byte_in_data_frame_is_a_zstd_error() {
        let file = build(&[&["some text that compresses"; 10]]);
        let mut bad = file.clone();
        let frame_len = scan(&file).next().unwrap().unwrap().len as usize;
        bad[frame_len - 2] ^= 0x40; // inside the content checksum
        let f = scan(&bad).next().unwrap().unwrap();
        assert!(decompress_frame(f.bytes, f.offset, &mut Vec::new()).is_err());
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    /// One data frame (streaming writer: no content size in the header) whose content is
    /// `len` bytes of LF-terminated lines.
    fn frame_of(len: usize) -> Vec<u8> {
        let mut c = FrameCompressor::new(1).unwrap();
        let mut file = Vec::new();
        let line = vec![b'a'; 1023];
        let mut left = len;
        while left > 0 {
            let n = left.min(1024);
            c.write_line(&line[..n - 1], &mut file).unwrap();
            left -= n;
        }
        c.end_frame(&mut file).unwrap();
        file
    }

    /// SPEC §8: a data frame decompresses to at most 16 MiB. Exactly the limit is accepted,
    /// one byte more is not (the old check ran only before each zstd call, so the last call
    /// could add up to the whole spare capacity of the output buffer: 17–31 MiB passed).
    #[test]
    fn frame_limit_is_exact() {
        for (len, ok) in [
            (MAX_FRAME_CONTENT, true),
            (MAX_FRAME_CONTENT + 1, false),
            (MAX_FRAME_CONTENT + 1024, false),
            (17 << 20, false),
            (31 << 20, false),
        ] {
            let f = frame_of(len);
            let mut out = Vec::new();
            let r = decompress_frame(&f, 7, &mut out);
            if ok {
                assert_eq!(r, Ok(()), "{len}");
                assert_eq!(out.len(), len);
            } else {
                assert_eq!(
                    r,
                    Err(ContainerError::OversizedFrame { offset: 7 }),
                    "{len}"
                );
                assert!(out.len() <= MAX_FRAME_CONTENT, "{len}: kept {}", out.len());
            }
            // Appending to a buffer that already holds data: the limit is per frame.
            let mut out = vec![b'x'; 1000];
            let r = Decompressor::new().frame(&f, 7, &mut out);
            assert_eq!(r.is_ok(), ok, "{len} after 1000 bytes");
        }
    }
}
