//! Streaming event reading: container → lines → [`EventLine`]s with absolute times and exact
//! bytes (`b` events folded in, SPEC §2.2). Reads unverified data; verification is
//! [`crate::verify_bytes`]. Every line is checked by [`EventRules`], the rules `verify`
//! applies too, so each command rejects the same lines with the same [`ReadError`] text.

use thiserror::Error;

use sealcast_format::{
    scan, ContainerError, Decompressor, EventLine, EventRules, FrameKind, Header, ParseError,
    Scanner,
};

/// Error reading a recording's events.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The container is not readable (offset inside).
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The header line is not asciicast v3.
    #[error("line 0 (header): {0}")]
    Header(ParseError),
    /// An event line breaks the rules of SPEC §2.2 ([`EventRules`]). Displayed as
    /// `line L, offset O: reason`, the form `sealcast verify` prints for the same line.
    #[error("line {line}, offset {offset}: {reason}")]
    Line {
        /// 0-based line number (0 = header).
        line: u64,
        /// Offset in the compressed file of the data frame holding the line's first byte.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Complete lines of the decompressed stream, frame by frame, with the compressed offset of
/// the frame each line starts in, and counts of what was read.
pub(crate) struct Lines<'a> {
    data: &'a [u8],
    scanner: Scanner<'a>,
    dec: Decompressor,
    buf: Vec<u8>,
    pos: usize,
    /// (index in `buf` where a frame's content starts, that frame's offset), ascending.
    starts: Vec<(usize, u64)>,
    truncated: Option<ContainerError>,
    done: bool,
    /// Data frames found complete by the scan.
    pub data_frames: u64,
    /// Checkpoint frames seen (not verified).
    pub checkpoint_frames: u64,
    /// Payload of the last checkpoint frame seen (not verified).
    pub last_checkpoint: Option<&'a [u8]>,
    /// Complete lines returned so far, and their bytes (LFs included).
    pub lines_read: u64,
    pub bytes_read: u64,
}

impl<'a> Lines<'a> {
    /// Lines of the whole compressed file `data`.
    pub(crate) fn new(data: &'a [u8]) -> Lines<'a> {
        Lines {
            data,
            scanner: scan(data),
            dec: Decompressor::new(),
            buf: Vec::new(),
            pos: 0,
            starts: Vec::new(),
            truncated: None,
            done: false,
            data_frames: 0,
            checkpoint_frames: 0,
            last_checkpoint: None,
            lines_read: 0,
            bytes_read: 0,
        }
    }

    /// The next complete line (without its LF) and the offset of the frame it starts in.
    pub(crate) fn next_line(&mut self) -> Option<(&[u8], u64)> {
        let (s, e, offset) = self.next_range()?;
        Some((&self.buf[s..e], offset))
    }

    /// Set once a frame could not be read completely (a crash tail or damage).
    pub(crate) fn truncated(&self) -> Option<&ContainerError> {
        self.truncated.as_ref()
    }

    /// Take the container error (for a file where no line could be read).
    pub(crate) fn take_truncated(&mut self) -> Option<ContainerError> {
        self.truncated.take()
    }

    fn offset_of(&self, at: usize) -> u64 {
        let i = self.starts.partition_point(|&(s, _)| s <= at);
        self.starts.get(i.wrapping_sub(1)).map_or(0, |&(_, o)| o)
    }

    fn next_range(&mut self) -> Option<(usize, usize, u64)> {
        loop {
            if let Some(n) = memchr::memchr(b'\n', &self.buf[self.pos..]) {
                let start = self.pos;
                self.pos += n + 1;
                self.lines_read += 1;
                self.bytes_read += n as u64 + 1;
                return Some((start, start + n, self.offset_of(start)));
            }
            if self.done {
                return None;
            }
            // Keep the frame start that the unfinished line begins in.
            let keep = self.starts.partition_point(|&(s, _)| s <= self.pos);
            self.starts.drain(..keep.saturating_sub(1));
            for st in &mut self.starts {
                st.0 = st.0.saturating_sub(self.pos);
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            match self.scanner.next() {
                None => self.done = true,
                Some(Ok(f)) if f.kind == FrameKind::Checkpoint => {
                    self.checkpoint_frames += 1;
                    self.last_checkpoint = Some(f.bytes);
                }
                Some(Ok(f)) => {
                    self.data_frames += 1;
                    self.starts.push((self.buf.len(), f.offset));
                    if let Err(e) = self.dec.frame(f.bytes, f.offset, &mut self.buf) {
                        self.truncated = Some(e);
                        self.done = true;
                    }
                }
                Some(Err(e)) => {
                    if let ContainerError::Truncated { offset, .. } = e {
                        self.starts.push((self.buf.len(), offset));
                        self.dec
                            .partial(&self.data[offset as usize..], &mut self.buf);
                    }
                    self.truncated = Some(e);
                    self.done = true;
                }
            }
        }
    }
}

/// How the compressed stream ended, once everything decodable has been read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every frame decoded.
    Complete,
    /// The file ends inside a frame ([`ContainerError::Truncated`]): a crash tail or a cut
    /// file. Everything up to the last complete line was used.
    Truncated(ContainerError),
    /// A frame could not be decoded (corrupt zstd data, bad checksum, unknown frame, …): the
    /// complete lines decoded before zstd detected the damage were used (for a checksum
    /// mismatch that can include lines of the bad frame itself), nothing after it.
    Damaged(ContainerError),
}

impl StreamEnd {
    pub(crate) fn from_error(e: Option<&ContainerError>) -> StreamEnd {
        match e {
            None => StreamEnd::Complete,
            Some(e @ ContainerError::Truncated { .. }) => StreamEnd::Truncated(e.clone()),
            Some(e) => StreamEnd::Damaged(e.clone()),
        }
    }

    /// How a [`Reader`] that has been iterated to its end stopped.
    pub fn of_reader(reader: &Reader<'_>) -> StreamEnd {
        StreamEnd::from_error(reader.truncated())
    }

    /// The container error, unless the stream is complete.
    pub fn error(&self) -> Option<&ContainerError> {
        match self {
            StreamEnd::Complete => None,
            StreamEnd::Truncated(e) | StreamEnd::Damaged(e) => Some(e),
        }
    }
}

/// One event line as [`EventRules`] accepted it.
#[derive(Debug)]
pub struct CheckedLine<'l> {
    /// The line's bytes (without LF), exactly as stored.
    pub line: &'l [u8],
    /// 0-based line number (0 = header).
    pub line_no: u64,
    /// The parsed event.
    pub event: sealcast_format::Event,
    /// Decoded bytes of a `b` event.
    pub raw: Option<Vec<u8>>,
}

/// The header and then the checked event lines of a recording, **unverified**: the one path
/// by which `cat`, `export`, `play` and `info` read lines (and [`Reader`] its events). For
/// lines with their verification state, read with [`crate::verify_recording`] or a reader
/// that verifies.
pub struct CheckedLines<'a> {
    pub(crate) lines: Lines<'a>,
    header: Header,
    header_line: Vec<u8>,
    rules: EventRules,
    line_no: u64,
}

impl std::fmt::Debug for CheckedLines<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedLines")
            .field("line_no", &self.line_no)
            .finish()
    }
}

impl<'a> CheckedLines<'a> {
    /// Open `data` (a whole compressed recording) and parse its header (line 0).
    ///
    /// # Errors
    /// [`ReadError::Container`] if no complete line can be decoded, [`ReadError::Header`] if
    /// line 0 is not an asciicast v3 header.
    pub fn open(data: &'a [u8]) -> Result<CheckedLines<'a>, ReadError> {
        let mut lines = Lines::new(data);
        let Some((first, _)) = lines.next_line() else {
            return Err(lines
                .take_truncated()
                .unwrap_or(ContainerError::Empty)
                .into());
        };
        let header_line = first.to_vec();
        let header = Header::parse(first).map_err(ReadError::Header)?;
        Ok(CheckedLines {
            lines,
            header,
            header_line,
            rules: EventRules::new(),
            line_no: 1,
        })
    }

    /// The header (line 0).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The header line's bytes, exactly as stored (without LF).
    pub fn header_line(&self) -> &[u8] {
        &self.header_line
    }

    /// The next event line, checked by [`EventRules`]; `None` at the end of what decodes.
    /// After an error the following lines are still returned (the rules' state is as before
    /// the bad line), for callers that count them.
    pub fn next_checked(&mut self) -> Option<Result<CheckedLine<'_>, ReadError>> {
        let (line, offset) = self.lines.next_line()?;
        let line_no = self.line_no;
        self.line_no += 1;
        Some(match self.rules.parse(line) {
            Ok((event, raw)) => Ok(CheckedLine {
                line,
                line_no,
                event,
                raw,
            }),
            Err(e) => Err(ReadError::Line {
                line: line_no,
                offset,
                reason: e.to_string(),
            }),
        })
    }

    /// How the stream ended, once [`CheckedLines::next_checked`] returned `None`.
    pub fn end(&self) -> StreamEnd {
        StreamEnd::from_error(self.lines.truncated())
    }
}

/// Iterator over the events of a recording held in memory. Yields the events of the
/// decodable prefix; [`Reader::truncated`] tells whether the stream ended early. Stops after
/// the first [`ReadError`] (every event before the bad line is yielded first).
pub struct Reader<'a> {
    events: CheckedLines<'a>,
    time_us: u64,
    pending: Option<EventLine>,
    /// An error found while `pending` was still held; yielded after it.
    failed: Option<ReadError>,
    stopped: bool,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("line_no", &self.events.line_no)
            .finish()
    }
}

impl<'a> Reader<'a> {
    /// Open a recording (the whole compressed file) and parse its header.
    ///
    /// # Errors
    /// [`ReadError::Container`] if no complete line can be decoded, [`ReadError::Header`] if
    /// line 0 is not an asciicast v3 header.
    pub fn open(data: &'a [u8]) -> Result<Reader<'a>, ReadError> {
        Ok(Reader {
            events: CheckedLines::open(data)?,
            time_us: 0,
            pending: None,
            failed: None,
            stopped: false,
        })
    }

    /// The header (line 0).
    pub fn header(&self) -> &Header {
        self.events.header()
    }

    /// Set once the reader reached a frame it could not read completely (a crash tail or
    /// damage): the events returned are the decodable prefix.
    pub fn truncated(&self) -> Option<&ContainerError> {
        self.events.lines.truncated()
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<EventLine, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.failed.take() {
            return Some(Err(err));
        }
        if self.stopped {
            return None;
        }
        loop {
            let checked = match self.events.next_checked() {
                None => return self.pending.take().map(Ok),
                Some(Ok(c)) => c,
                Some(Err(err)) => {
                    self.stopped = true;
                    return match self.pending.take() {
                        Some(p) => {
                            self.failed = Some(err);
                            Some(Ok(p))
                        }
                        None => Some(Err(err)),
                    };
                }
            };
            // Saturating: 10⁹ s per line cannot overflow a u64 of µs in fewer than 18 000
            // lines, and a reader never panics on input.
            self.time_us = self.time_us.saturating_add(checked.event.interval_us);
            if let Some(raw) = checked.raw {
                // EventRules: a `b` follows an `o`, `i` or `e`, which is pending.
                if let Some(p) = self.pending.as_mut() {
                    p.bytes = raw;
                }
                continue;
            }
            let next = EventLine {
                time_us: self.time_us,
                kind: checked.event.kind,
                bytes: checked.event.data.into_bytes(),
            };
            if let Some(done) = self.pending.replace(next) {
                return Some(Ok(done));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_format::{EventKind, Header, SealMeta};
    use sealcast_recorder::{CheckpointPolicy, SealedWriter, SystemClock};
    use sealcast_signer::SigningKey;

    #[test]
    fn exact_bytes_follow_stdout_stdin_and_stderr_events() {
        let key = SigningKey::generate().unwrap();
        let h = Header::sealed(SealMeta {
            capture_input: true,
            ..SealMeta::new("0".repeat(32), "h", "u", 0, "t", key.id().to_string())
        });
        let mut w = SealedWriter::new(
            Vec::new(),
            key,
            &h,
            SystemClock::new(),
            CheckpointPolicy::default(),
        )
        .unwrap();
        w.output(b"out\xff").unwrap();
        w.input(b"in\xfe").unwrap();
        w.stderr(b"err\xfd").unwrap();
        let (file, _) = w.finish(Some(0)).unwrap();
        let got: Vec<(EventKind, Vec<u8>)> = Reader::open(&file)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.kind, e.bytes))
            .collect();
        assert_eq!(
            got,
            [
                (EventKind::Output, b"out\xff".to_vec()),
                (EventKind::Input, b"in\xfe".to_vec()),
                (EventKind::Stderr, b"err\xfd".to_vec()),
                (EventKind::Exit, b"0".to_vec()),
            ]
        );
    }
}
