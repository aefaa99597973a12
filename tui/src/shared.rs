//! What the UI thread and the background threads share for one open recording: the
//! recording (its frame table grows while a live file is followed) and the seek index
//! (built in the background while the first frame is already on screen).

use std::sync::{Arc, RwLock, RwLockReadGuard};

use sealcast_term::{BlockCodec, EventSource, Index, IndexBuilder, IndexPolicy};

use crate::recording::Recording;

/// A recording and its index (see the module docs).
#[derive(Debug)]
pub struct Shared {
    /// The recording.
    pub rec: RwLock<Recording>,
    /// Keyframes and transcript.
    pub index: RwLock<Index>,
}

/// Output bytes fed to the index builder between two merges into the shared index.
const STEP_BYTES: usize = 2 << 20;

/// Transcript blocks compressed as zstd frames (sealcast-format's codec, level 1).
struct Zstd;

impl BlockCodec for Zstd {
    fn pack(&self, raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let ok = sealcast_format::FrameCompressor::new(1).and_then(|mut c| {
            c.write_line(raw, &mut out)?;
            c.end_frame(&mut out)
        });
        match ok {
            Ok(()) => out,
            // Keep the raw text, marked by a leading 0 byte a zstd frame never starts with.
            Err(_) => std::iter::once(0).chain(raw.iter().copied()).collect(),
        }
    }

    fn unpack(&self, packed: &[u8]) -> Option<Vec<u8>> {
        if packed.first() == Some(&0) {
            return Some(packed[1..].to_vec());
        }
        let mut out = Vec::new();
        sealcast_format::decompress_frame(packed, 0, &mut out).ok()?;
        out.pop(); // the LF write_line added
        Some(out)
    }
}

/// Transcript blocks compressed and written to an unlinked temporary file; the transcript
/// keeps only a 12-byte handle (offset, length) per block, so a long text recording's
/// scrolled-off rows cost disk, not memory.
struct Spill {
    file: std::fs::File,
    end: std::sync::Mutex<u64>,
}

impl BlockCodec for Spill {
    fn pack(&self, raw: &[u8]) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let packed = Zstd.pack(raw);
        let Ok(mut end) = self.end.lock() else {
            return Zstd.pack(raw);
        };
        if self.file.write_all_at(&packed, *end).is_err() {
            // Keep it in memory instead, marked by its length (not 12).
            return packed;
        }
        let mut h = Vec::with_capacity(12);
        h.extend_from_slice(&end.to_le_bytes());
        h.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        *end += packed.len() as u64;
        h
    }

    fn unpack(&self, packed: &[u8]) -> Option<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        if packed.len() != 12 {
            return Zstd.unpack(packed);
        }
        let off = u64::from_le_bytes(packed[..8].try_into().ok()?);
        let len = u32::from_le_bytes(packed[8..].try_into().ok()?) as usize;
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, off).ok()?;
        Zstd.unpack(&buf)
    }
}

/// The transcript codec: spilled to a temporary file when one can be made, else zstd in
/// memory.
fn codec() -> Box<dyn BlockCodec> {
    match tempfile::tempfile() {
        Ok(file) => Box::new(Spill {
            file,
            end: std::sync::Mutex::new(0),
        }),
        Err(_) => Box::new(Zstd),
    }
}

/// Read access to the recording as an [`EventSource`].
pub fn source(shared: &Shared) -> RwLockReadGuard<'_, Recording> {
    shared.rec.read().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Wrap a recording with an empty index.
    pub fn new(rec: Recording, policy: IndexPolicy) -> Arc<Shared> {
        let m = rec.meta();
        Arc::new(Shared {
            index: RwLock::new(Index::new(m.cols, m.rows, policy, Some(codec()))),
            rec: RwLock::new(rec),
        })
    }

    /// The index, for reading.
    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Feed up to `max_events` more events to `builder` and merge what it built. Returns
    /// the number of events fed (0 when it has caught up with the recording).
    pub fn index_step(&self, builder: &mut IndexBuilder, max_events: u64) -> u64 {
        let fed = {
            let rec = source(self);
            let start = builder.next_event();
            let end = rec.len().min(start + max_events);
            if start >= end {
                return 0;
            }
            // Bounded by events and by output bytes, so the rows and keyframes built
            // between merges stay small.
            let mut bytes = 0usize;
            rec.visit(start, &mut |i, ev| {
                builder.feed(&ev);
                bytes += ev.data.len();
                i + 1 < end && bytes < STEP_BYTES
            });
            builder.next_event() - start
        };
        let d = builder.take();
        self.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .merge(d);
        fed
    }

    /// A builder for this recording's index.
    pub fn builder(&self, policy: IndexPolicy) -> IndexBuilder {
        let m = source(self).meta();
        IndexBuilder::new(m.cols, m.rows, policy)
    }

    /// Scan up to `max_frames` more frames of the recording (a short write lock). Returns
    /// true while there is more to scan.
    pub fn scan_step(&self, max_frames: usize, live: bool) -> bool {
        self.rec
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .scan_step(max_frames, live)
    }

    /// Scan and index the whole recording now (tests, fuzzing, benchmarks).
    pub fn index_all(&self, policy: IndexPolicy) {
        let mut b = self.builder(policy);
        let mut n = 0u32;
        loop {
            let more = self.scan_step(64, false);
            if self.index_step(&mut b, 1 << 16) == 0 && !more {
                break;
            }
            n += 1;
            if n.is_multiple_of(16) {
                source(self).release_pages();
            }
        }
        source(self).release_pages();
    }
}
