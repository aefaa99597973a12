//! Streaming event reader: container → lines → [`EventLine`]s with absolute times and exact
//! bytes (`b` events folded in, SPEC §2.2). Reads unverified data; verification is
//! [`crate::verify_bytes`].

use thiserror::Error;

use sealcast_format::{
    parse_event, scan, ContainerError, Decompressor, EventLine, FrameKind, Header, ParseError,
    Scanner,
};

/// Error reading a recording's events.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The container is not readable (offset inside).
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The header line is not asciicast v3.
    #[error("line 0 (header): {0}")]
    Header(ParseError),
    /// An event line is malformed.
    #[error("line {line}: {reason}")]
    Line {
        /// 0-based line number (0 = header).
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Complete lines of the decompressed stream, frame by frame.
struct Lines<'a> {
    data: &'a [u8],
    scanner: Scanner<'a>,
    dec: Decompressor,
    buf: Vec<u8>,
    pos: usize,
    truncated: Option<ContainerError>,
    done: bool,
}

impl<'a> Lines<'a> {
    /// Next complete line as a range into `self.buf`.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        loop {
            if let Some(n) = self.buf[self.pos..].iter().position(|&b| b == b'\n') {
                let start = self.pos;
                self.pos += n + 1;
                return Some((start, start + n));
            }
            if self.done {
                return None;
            }
            self.buf.drain(..self.pos);
            self.pos = 0;
            match self.scanner.next() {
                None => self.done = true,
                Some(Ok(f)) if f.kind == FrameKind::Checkpoint => {}
                Some(Ok(f)) => {
                    if let Err(e) = self.dec.frame(f.bytes, f.offset, &mut self.buf) {
                        self.truncated = Some(e);
                        self.done = true;
                    }
                }
                Some(Err(e)) => {
                    if let ContainerError::Truncated { offset, .. } = e {
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

/// Iterator over the events of a recording held in memory. Yields the events of the
/// decodable prefix; [`Reader::truncated`] tells whether the stream ended early.
pub struct Reader<'a> {
    lines: Lines<'a>,
    line_no: u64,
    time_us: u64,
    pending: Option<EventLine>,
    /// An error found while `pending` was still held; yielded after it.
    failed: Option<ReadError>,
    header: Header,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("line_no", &self.line_no)
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
        let mut lines = Lines {
            dec: Decompressor::new(),
            data,
            scanner: scan(data),
            buf: Vec::new(),
            pos: 0,
            truncated: None,
            done: false,
        };
        let Some((s, e)) = lines.next_line() else {
            return Err(lines
                .truncated
                .take()
                .unwrap_or(ContainerError::Empty)
                .into());
        };
        let header = Header::parse(&lines.buf[s..e]).map_err(ReadError::Header)?;
        Ok(Reader {
            lines,
            line_no: 1,
            time_us: 0,
            pending: None,
            failed: None,
            header,
        })
    }

    /// The header (line 0).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Set once the reader reached a frame it could not read completely (a crash tail or
    /// damage): the events returned are the decodable prefix.
    pub fn truncated(&self) -> Option<&ContainerError> {
        self.lines.truncated.as_ref()
    }
}

impl Reader<'_> {
    /// Report a bad line, but first hand out the event held back before it.
    fn fail(&mut self, line: u64, reason: String) -> Option<Result<EventLine, ReadError>> {
        let err = ReadError::Line { line, reason };
        match self.pending.take() {
            Some(p) => {
                self.failed = Some(err);
                Some(Ok(p))
            }
            None => Some(Err(err)),
        }
    }
}

impl Iterator for Reader<'_> {
    type Item = Result<EventLine, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(err) = self.failed.take() {
            return Some(Err(err));
        }
        loop {
            let Some((s, e)) = self.lines.next_line() else {
                return self.pending.take().map(Ok);
            };
            let line_no = self.line_no;
            self.line_no += 1;
            let ev = match parse_event(&self.lines.buf[s..e]) {
                Ok(ev) => ev,
                Err(err) => return self.fail(line_no, err.to_string()),
            };
            self.time_us += ev.interval_us;
            if ev.code == "b" {
                let raw = match ev.raw_bytes() {
                    Ok(raw) => raw,
                    Err(err) => return self.fail(line_no, err.to_string()),
                };
                match self.pending.as_mut() {
                    Some(p) if matches!(p.code.as_str(), "o" | "i" | "e") => p.bytes = raw,
                    _ => {
                        return self.fail(
                            line_no,
                            "'b' event does not follow an 'o', 'i' or 'e' event".into(),
                        )
                    }
                }
                continue;
            }
            let next = EventLine {
                time_us: self.time_us,
                code: ev.code,
                bytes: ev.data.into_bytes(),
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
    use sealcast_format::{Header, SealMeta};
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
        let got: Vec<(String, Vec<u8>)> = Reader::open(&file)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.code, e.bytes))
            .collect();
        assert_eq!(
            got,
            [
                ("o".to_string(), b"out\xff".to_vec()),
                ("i".to_string(), b"in\xfe".to_vec()),
                ("e".to_string(), b"err\xfd".to_vec()),
                ("x".to_string(), b"0".to_vec()),
            ]
        );
    }
}
