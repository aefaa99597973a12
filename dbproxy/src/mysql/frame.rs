//! Framing of MySQL packets: `int<3>` payload length (little-endian), `int<1>` sequence id,
//! payload (MariaDB docs, "0 - Packet"). A payload of exactly `0xFFFFFF` bytes continues in
//! the next packet (16 MiB continuation). Sans-I/O like [`crate::pg::frame`]: packets up to
//! `cap` bytes come whole, longer ones stream.

/// Largest payload of one physical packet; a payload this long continues in the next.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// What the framer saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// A whole packet (payload at most `cap`).
    Packet {
        /// Sequence id.
        seq: u8,
        /// Payload.
        body: &'a [u8],
    },
    /// Start of a packet over the cap; `len` payload bytes follow as [`Piece::Data`].
    Start {
        /// Sequence id.
        seq: u8,
        /// Payload length.
        len: usize,
    },
    /// Payload bytes of the streamed packet.
    Data(&'a [u8]),
    /// End of the streamed packet.
    End,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    Whole { seq: u8, need: usize },
    Stream { left: usize },
}

/// Incremental splitter of one direction.
#[derive(Debug, Clone)]
pub struct Framer {
    cap: usize,
    hdr: [u8; 4],
    hdr_len: usize,
    buf: Vec<u8>,
    state: State,
}

impl Framer {
    /// Packets up to `cap` payload bytes come whole.
    pub fn new(cap: usize) -> Framer {
        Framer {
            cap,
            hdr: [0; 4],
            hdr_len: 0,
            buf: Vec::new(),
            state: State::Header,
        }
    }

    /// Feed bytes; `out` receives the pieces in order. Never fails: every length is valid.
    pub fn feed(&mut self, mut data: &[u8], out: &mut impl FnMut(Piece<'_>)) {
        while !data.is_empty() {
            match self.state {
                State::Header => {
                    let take = (4 - self.hdr_len).min(data.len());
                    self.hdr[self.hdr_len..self.hdr_len + take].copy_from_slice(&data[..take]);
                    self.hdr_len += take;
                    data = &data[take..];
                    if self.hdr_len < 4 {
                        break;
                    }
                    self.hdr_len = 0;
                    let len = usize::from(self.hdr[0])
                        | usize::from(self.hdr[1]) << 8
                        | usize::from(self.hdr[2]) << 16;
                    let seq = self.hdr[3];
                    if len <= self.cap {
                        if data.len() >= len {
                            out(Piece::Packet {
                                seq,
                                body: &data[..len],
                            });
                            data = &data[len..];
                        } else {
                            self.buf.clear();
                            self.buf.extend_from_slice(data);
                            self.state = State::Whole {
                                seq,
                                need: len - data.len(),
                            };
                            data = &[];
                        }
                    } else {
                        out(Piece::Start { seq, len });
                        self.state = State::Stream { left: len };
                    }
                }
                State::Whole { seq, need } => {
                    let take = need.min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if take == need {
                        out(Piece::Packet {
                            seq,
                            body: &self.buf,
                        });
                        self.buf.clear();
                        if self.buf.capacity() > 1 << 20 {
                            self.buf.shrink_to(64 * 1024);
                        }
                        self.state = State::Header;
                    } else {
                        self.state = State::Whole {
                            seq,
                            need: need - take,
                        };
                    }
                }
                State::Stream { left } => {
                    let take = left.min(data.len());
                    out(Piece::Data(&data[..take]));
                    data = &data[take..];
                    if take == left {
                        out(Piece::End);
                        self.state = State::Header;
                    } else {
                        self.state = State::Stream { left: left - take };
                    }
                }
            }
        }
    }
}

/// A packet (header and payload).
pub fn packet(seq: u8, body: &[u8]) -> Vec<u8> {
    let n = body.len().min(MAX_PAYLOAD);
    let mut v = Vec::with_capacity(n + 4);
    v.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
    v.push(seq);
    v.extend_from_slice(&body[..n]);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_streamed_at_every_split() {
        let mut s = packet(0, b"\x03SELECT 1");
        s.extend(packet(1, &[7u8; 40]));
        for cut in 0..s.len() {
            let mut f = Framer::new(16);
            let mut got = Vec::new();
            for part in [&s[..cut], &s[cut..]] {
                f.feed(part, &mut |p| {
                    got.push(match p {
                        Piece::Packet { seq, body } => format!("P{seq}:{}", body.len()),
                        Piece::Start { seq, len } => format!("S{seq}:{len}"),
                        Piece::Data(_) => String::new(),
                        Piece::End => "E".into(),
                    })
                });
            }
            got.retain(|g| !g.is_empty());
            assert_eq!(got, ["P0:9", "S1:40", "E"], "cut {cut}");
        }
    }
}
