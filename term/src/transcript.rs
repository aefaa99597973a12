//! The append-only transcript: every row that scrolled off the top of the primary screen,
//! in order, with the event during which it left. Scrollback at any time is a lookup here
//! instead of a replay, and keyframes stay free of scrollback (a 10,000-row scrollback makes
//! each `vt100::Screen` clone ~24 MiB; `anchors-player.md` §2).
//!
//! Rows are kept in blocks of about [`BLOCK_BYTES`] of text; a full block is handed to an
//! optional [`BlockCodec`] (the player compresses them with zstd) so a long text recording's
//! transcript does not hold its whole text in memory.

use std::ops::Range;

/// Text bytes per block before it is sealed (and packed by the codec, if any).
pub const BLOCK_BYTES: usize = 256 * 1024;

/// Packs sealed transcript blocks (e.g. compression). `unpack(pack(x)) == Some(x)`.
pub trait BlockCodec: Send + Sync {
    /// Pack a block's text.
    fn pack(&self, raw: &[u8]) -> Vec<u8>;
    /// Unpack what [`BlockCodec::pack`] produced; `None` if it cannot.
    fn unpack(&self, packed: &[u8]) -> Option<Vec<u8>>;
}

/// One transcript row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 0-based row number in the transcript.
    pub index: u64,
    /// Index of the event during which the row scrolled off.
    pub event: u64,
    /// Plain text, trailing blanks trimmed.
    pub text: String,
}

#[derive(Debug)]
struct Block {
    first_row: u64,
    first_event: u64,
    /// Event of each row, run-length encoded: (delta from `first_event`, rows). A chunk of
    /// output usually scrolls many rows off at once, so runs are few.
    runs: Vec<(u32, u32)>,
    /// Rows in the block.
    rows: u64,
    /// Rows joined by LF; packed by the codec when the block is sealed.
    text: Vec<u8>,
    packed: bool,
}

impl Block {
    fn new(first_row: u64, first_event: u64) -> Block {
        Block {
            first_row,
            first_event,
            runs: Vec::new(),
            rows: 0,
            text: Vec::new(),
            packed: false,
        }
    }

    fn last_event(&self) -> u64 {
        self.first_event + u64::from(self.runs.last().map_or(0, |r| r.0))
    }
}

/// The transcript (see the module docs).
pub struct Transcript {
    blocks: Vec<Block>,
    codec: Option<Box<dyn BlockCodec>>,
    rows: u64,
}

impl std::fmt::Debug for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcript")
            .field("rows", &self.rows)
            .field("blocks", &self.blocks.len())
            .finish()
    }
}

impl Default for Transcript {
    fn default() -> Self {
        Transcript::new(None)
    }
}

impl Transcript {
    /// An empty transcript; sealed blocks go through `codec` when one is given.
    pub fn new(codec: Option<Box<dyn BlockCodec>>) -> Transcript {
        Transcript {
            blocks: Vec::new(),
            codec,
            rows: 0,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> u64 {
        self.rows
    }

    /// True when no row has scrolled off yet.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes held (packed blocks at their packed size).
    pub fn heap_bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| b.text.capacity() + b.runs.capacity() * 8 + 64)
            .sum()
    }

    /// Append a row that scrolled off during event `event` (events are non-decreasing).
    pub fn push(&mut self, event: u64, text: &str) {
        let need_new = match self.blocks.last() {
            None => true,
            Some(b) => {
                b.packed
                    || b.text.len() >= BLOCK_BYTES
                    || event.saturating_sub(b.first_event) > u64::from(u32::MAX)
            }
        };
        if need_new {
            self.seal_last();
            self.blocks.push(Block::new(self.rows, event));
        }
        let Some(b) = self.blocks.last_mut() else {
            return;
        };
        if b.rows > 0 {
            b.text.push(b'\n');
        }
        b.text.extend_from_slice(text.as_bytes());
        let d = (event - b.first_event) as u32;
        match b.runs.last_mut() {
            Some(r) if r.0 == d => r.1 += 1,
            _ => b.runs.push((d, 1)),
        }
        b.rows += 1;
        self.rows += 1;
    }

    fn seal_last(&mut self) {
        if let (Some(codec), Some(b)) = (&self.codec, self.blocks.last_mut()) {
            if !b.packed {
                b.text = codec.pack(&b.text);
                b.packed = true;
            }
        }
    }

    /// Number of rows that scrolled off during events `0..events` (the transcript as it
    /// stood once those events were applied).
    pub fn rows_before(&self, events: u64) -> u64 {
        let bi = self.blocks.partition_point(|b| b.first_event < events);
        if bi == 0 {
            return 0;
        }
        let b = &self.blocks[bi - 1];
        if b.last_event() < events {
            return b.first_row + b.rows;
        }
        let within: u64 = b
            .runs
            .iter()
            .take_while(|r| b.first_event + u64::from(r.0) < events)
            .map(|r| u64::from(r.1))
            .sum();
        b.first_row + within
    }

    fn block_text(&self, b: &Block) -> Option<Vec<u8>> {
        if b.packed {
            self.codec.as_ref()?.unpack(&b.text)
        } else {
            Some(b.text.clone())
        }
    }

    /// Visit the rows with index in `range`, in order, until `f` returns false.
    pub fn visit(&self, range: Range<u64>, mut f: impl FnMut(Row) -> bool) {
        if range.start >= range.end {
            return;
        }
        let mut bi = self
            .blocks
            .partition_point(|b| b.first_row <= range.start)
            .saturating_sub(1);
        while let Some(b) = self.blocks.get(bi) {
            if b.first_row >= range.end {
                return;
            }
            let Some(text) = self.block_text(b) else {
                return;
            };
            // The event of each row, from the runs.
            let mut events = b
                .runs
                .iter()
                .flat_map(|&(d, n)| std::iter::repeat_n(b.first_event + u64::from(d), n as usize));
            for (i, line) in text.split(|&c| c == b'\n').enumerate() {
                let index = b.first_row + i as u64;
                let event = events.next().unwrap_or(b.first_event);
                if index < range.start {
                    continue;
                }
                if index >= range.end {
                    return;
                }
                let row = Row {
                    index,
                    event,
                    text: String::from_utf8_lossy(line).into_owned(),
                };
                if !f(row) {
                    return;
                }
            }
            bi += 1;
        }
    }

    /// The rows with index in `range`.
    pub fn rows(&self, range: Range<u64>) -> Vec<Row> {
        let mut v = Vec::new();
        self.visit(range, |r| {
            v.push(r);
            true
        });
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reverse;
    impl BlockCodec for Reverse {
        fn pack(&self, raw: &[u8]) -> Vec<u8> {
            raw.iter().rev().copied().collect()
        }
        fn unpack(&self, packed: &[u8]) -> Option<Vec<u8>> {
            Some(packed.iter().rev().copied().collect())
        }
    }

    #[test]
    fn rows_are_found_by_event_across_packed_blocks() {
        let mut t = Transcript::new(Some(Box::new(Reverse)));
        let long = "x".repeat(1000);
        for i in 0..1000u64 {
            t.push(i * 2, &format!("{i} {long}"));
        }
        assert!(t.blocks.len() > 2 && t.blocks[0].packed);
        assert_eq!(t.rows_before(0), 0);
        assert_eq!(t.rows_before(1), 1);
        assert_eq!(t.rows_before(2), 1);
        assert_eq!(t.rows_before(3), 2);
        assert_eq!(t.rows_before(10_000), 1000);
        let r = t.rows(499..502);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].index, r[0].event), (499, 998));
        assert!(r[2].text.starts_with("501 "));
    }
}
