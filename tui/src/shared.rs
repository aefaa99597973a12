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

/// Output bytes fed to an index builder between two merges into the shared index (its
/// frames are collected under the recording's read lock, then fed without it).
const STEP_BYTES: usize = 512 << 10;

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

/// Lower the calling thread's scheduling priority (nice +10, Linux `setpriority(2)` on the
/// thread id): the transcript thread yields to the keyframe thread and the UI when the cores
/// are busy, and runs beside them when a core is free.
pub fn lower_priority() {
    // SAFETY: gettid and setpriority take no pointers; failure only leaves the priority.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid);
        if let Ok(tid) = libc::id_t::try_from(tid) {
            libc::setpriority(libc::PRIO_PROCESS, tid, 10);
        }
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
        let start = builder.next_event();
        // The frames under the read lock; the emulator runs after it is released.
        let (batch, end) = {
            let rec = source(self);
            let end = rec.len().min(start + max_events);
            if start >= end {
                return 0;
            }
            (rec.batch(start, end, STEP_BYTES), end)
        };
        // Bounded by events and by output bytes, so the rows and keyframes built between
        // merges stay small.
        let mut bytes = 0usize;
        batch.visit(start, end, &mut |i, ev| {
            builder.feed(&ev);
            bytes += ev.data.len();
            i + 1 < end && bytes < STEP_BYTES
        });
        let fed = builder.next_event() - start;
        let d = builder.take();
        self.index
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .merge(d);
        fed
    }

    /// A builder for this recording's index (keyframes and transcript in one pass).
    pub fn builder(&self, policy: IndexPolicy) -> IndexBuilder {
        let m = source(self).meta();
        IndexBuilder::new(m.cols, m.rows, policy)
    }

    /// Two builders for two threads: keyframes (with the scan, what makes the recording
    /// seekable), and the transcript of scrolled-off rows behind it.
    pub fn split_builders(&self, policy: IndexPolicy) -> (IndexBuilder, IndexBuilder) {
        let m = source(self).meta();
        (
            IndexBuilder::with_parts(m.cols, m.rows, policy, true, false),
            IndexBuilder::with_parts(m.cols, m.rows, policy, false, true),
        )
    }

    /// Scan up to `max_frames` more frames of the recording (a short write lock). Returns
    /// true while there is more to scan.
    pub fn scan_step(&self, max_frames: usize, live: bool) -> bool {
        // Done: no write lock (it would wait for the builders' read locks).
        if !live && source(self).scan_done() {
            return false;
        }
        self.rec
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .scan_step(max_frames, live)
    }

    /// Scan and index the whole recording now (tests, fuzzing, benchmarks): the scan and
    /// the keyframes on this thread, the transcript on a second one, as the player does.
    /// Returns (seconds until the keyframes were complete, seconds until the transcript
    /// was).
    pub fn index_all(&self, policy: IndexPolicy) -> (f64, f64) {
        let t0 = std::time::Instant::now();
        let (mut kb, mut tb) = self.split_builders(policy);
        let scanned = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let transcript = s.spawn(|| {
                lower_priority();
                let mut n = 0u32;
                loop {
                    // Read before stepping: once the scan is done, a step that feeds
                    // nothing means the end.
                    let done = scanned.load(std::sync::atomic::Ordering::Acquire);
                    if self.index_step(&mut tb, 1 << 16) == 0 {
                        if done {
                            break;
                        }
                        std::thread::yield_now();
                    }
                    n += 1;
                    if n.is_multiple_of(64) {
                        source(self).release_pages();
                    }
                }
                t0.elapsed().as_secs_f64()
            });
            let mut n = 0u32;
            loop {
                // A few frames, then the keyframes over them while the scan's decoded
                // events are still at hand.
                let more = self.scan_step(8, false);
                if !more {
                    scanned.store(true, std::sync::atomic::Ordering::Release);
                }
                let mut fed = 0;
                loop {
                    let f = self.index_step(&mut kb, 1 << 16);
                    fed += f;
                    if f == 0 {
                        break;
                    }
                }
                if fed == 0 && !more {
                    break;
                }
                n += 1;
                if n.is_multiple_of(64) {
                    source(self).release_pages();
                }
            }
            let kf_s = t0.elapsed().as_secs_f64();
            let tr_s = transcript.join().unwrap_or(kf_s);
            source(self).release_pages();
            (kf_s, tr_s)
        })
    }
}
