//! Framing of PostgreSQL messages after startup: `byte tag`, `int32 length` (counting
//! itself), body (PostgreSQL docs, "Message Formats"). Sans-I/O: [`Framer::feed`] takes
//! whatever bytes arrived and reports [`Piece`]s; it never buffers more than one kept message
//! (at most `cap` bytes), so rows and COPY data of any size stream through.

/// What the framer saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole message whose tag is kept (body at most `cap` bytes).
    Msg {
        /// Message type byte.
        tag: u8,
        /// Body, without tag and length.
        body: &'a [u8],
    },
    /// Start of a streamed message: a tag that is not kept, or a kept one over the cap
    /// (`kept` is then true). `len` body bytes follow as [`Piece::Data`], then [`Piece::End`].
    Start {
        /// Message type byte.
        tag: u8,
        /// Body length in bytes.
        len: usize,
        /// True when the tag is kept but the body was over the cap.
        kept: bool,
    },
    /// Body bytes of the streamed message.
    Data(&'a [u8]),
    /// End of the streamed message.
    End {
        /// Message type byte.
        tag: u8,
    },
}

/// A length field that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message '{}' (0x{tag:02x}) at stream offset {offset} has length {len} (< 4)", char::from(*tag).escape_default())]
pub struct FrameError {
    /// Message type byte.
    pub tag: u8,
    /// The length field.
    pub len: u32,
    /// Offset of the message in the stream (bytes fed before it).
    pub offset: u64,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Whole { tag: u8, need: usize },
    Stream { tag: u8, left: usize },
}

/// Incremental splitter of one direction of a connection.
#[derive(Debug, Clone)]
pub struct Framer {
    keep: [bool; 256],
    cap: usize,
    hdr: [u8; 5],
    hdr_len: usize,
    buf: Vec<u8>,
    state: State,
    offset: u64,
    broken: Option<FrameError>,
}

impl Framer {
    /// A framer keeping whole the messages whose tags are in `keep`, up to `cap` body bytes.
    pub fn new(keep: &[u8], cap: usize) -> Framer {
        let mut k = [false; 256];
        for &t in keep {
            k[t as usize] = true;
        }
        Framer {
            keep: k,
            cap,
            hdr: [0; 5],
            hdr_len: 0,
            buf: Vec::new(),
            state: State::Header,
            offset: 0,
            broken: None,
        }
    }

    /// True between messages (no partial message buffered or streaming).
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header) && self.hdr_len == 0
    }

    /// Feed bytes; `out` receives the pieces in order.
    ///
    /// # Errors
    /// [`FrameError`] on an impossible length; the framer then refuses everything after it.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        out: &mut impl FnMut(Piece<'_>),
    ) -> Result<(), FrameError> {
        if let Some(e) = &self.broken {
            return Err(e.clone());
        }
        while !data.is_empty() {
            match self.state {
                State::Header => {
                    let take = (5 - self.hdr_len).min(data.len());
                    self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[..take]);
                    self.hdr_len += take;
                    data = &data[take..];
                    if self.hdr_len < 5 {
                        break;
                    }
                    self.hdr_len = 0;
                    let tag = self.hdr[0];
                    let len =
                        u32::from_be_bytes([self.hdr[1], self.hdr[2], self.hdr[3], self.hdr[4]]);
                    if len < 4 {
                        let e = FrameError {
                            tag,
                            len,
                            offset: self.offset,
                        };
                        self.broken = Some(e.clone());
                        return Err(e);
                    }
                    let body = (len - 4) as usize;
                    self.offset += 1 + u64::from(len);
                    if self.keep[tag as usize] && body <= self.cap {
                        if data.len() >= body {
                            out(Piece::Msg {
                                tag,
                                body: &data[..body],
                            });
                            data = &data[body..];
                        } else {
                            self.buf.clear();
                            self.buf.extend_from_slice(data);
                            self.state = State::Whole {
                                tag,
                                need: body - data.len(),
                            };
                            data = &[];
                        }
                    } else {
                        out(Piece::Start {
                            tag,
                            len: body,
                            kept: self.keep[tag as usize],
                        });
                        if body == 0 {
                            out(Piece::End { tag });
                        } else {
                            self.state = State::Stream { tag, left: body };
                        }
                    }
                }
                State::Whole { tag, need } => {
                    let take = need.min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if take == need {
                        out(Piece::Msg {
                            tag,
                            body: &self.buf,
                        });
                        self.buf.clear();
                        if self.buf.capacity() > 1 << 20 {
                            self.buf.shrink_to(64 * 1024);
                        }
                        self.state = State::Header;
                    } else {
                        self.state = State::Whole {
                            tag,
                            need: need - take,
                        };
                    }
                }
                State::Stream { tag, left } => {
                    let take = left.min(data.len());
                    out(Piece::Data(&data[..take]));
                    data = &data[take..];
                    if take == left {
                        out(Piece::End { tag });
                        self.state = State::Header;
                    } else {
                        self.state = State::Stream {
                            tag,
                            left: left - take,
                        };
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn pieces(f: &mut Framer, chunks: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut |p| out.push(format!("{p:?}"))).unwrap();
        }
        out
    }

    #[test]
    fn same_pieces_at_every_split() {
        let mut stream = msg(b'C', b"SELECT 1\0");
        stream.extend(msg(b'D', b"\0\x01\0\0\0\x01x"));
        stream.extend(msg(b'Z', b"I"));
        let whole = {
            let mut f = Framer::new(b"CZ", 64);
            let mut out = Vec::new();
            f.feed(&stream, &mut |p| out.push(format!("{p:?}")))
                .unwrap();
            out
        };
        assert_eq!(whole.len(), 5, "{whole:?}");
        for cut in 0..stream.len() {
            let mut f = Framer::new(b"CZ", 64);
            let got = pieces(&mut f, &[&stream[..cut], &stream[cut..]]);
            // Data pieces may split; messages and boundaries may not.
            let kept: Vec<&String> = got.iter().filter(|p| !p.starts_with("Data")).collect();
            let want: Vec<&String> = whole.iter().filter(|p| !p.starts_with("Data")).collect();
            assert_eq!(kept, want, "cut at {cut}");
            assert!(f.at_boundary());
        }
    }

    #[test]
    fn over_cap_streams_and_bad_length_is_an_error() {
        let mut f = Framer::new(b"Q", 3);
        let got = pieces(&mut f, &[&msg(b'Q', b"SELECT")]);
        assert_eq!(got[0], "Start { tag: 81, len: 6, kept: true }");
        let mut f = Framer::new(b"Q", 3);
        let e = f.feed(b"Q\0\0\0\x02", &mut |_| {}).unwrap_err();
        assert_eq!(e.len, 2);
        assert!(f.feed(b"x", &mut |_| {}).is_err());
    }
}
