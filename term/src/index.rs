//! The seek index: keyframes (cloned `vt100::Screen`s at ground points) and the transcript,
//! built in one forward pass by [`IndexBuilder`] and read by seeks and searches.
//!
//! A seek to "events `0..n` applied" starts from the last keyframe at or before `n` and
//! replays at most one keyframe interval (≤ [`IndexPolicy::every_bytes`] of output, or two
//! or four after eviction), so its cost does not depend on the recording's length.

use std::sync::{Arc, Mutex};

use crate::emulator::{Emulator, Event};
use crate::snapshot::Snapshot;
use crate::transcript::{BlockCodec, Transcript};

/// Where and how often keyframes are taken, and how much memory they may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexPolicy {
    /// Take a keyframe after at least this many bytes of drawn output (default 256 KiB).
    pub every_bytes: u64,
    /// …or after this many microseconds of recording time with some output (default 30 s).
    pub every_us: u64,
    /// Memory budget for keyframe screens, bytes (default 32 MiB: the issue asked for 64,
    /// but full-screen keyframes are ~120 KiB copies, and with 64 MiB of them the player
    /// would pass its 64 MiB RSS target; measured in `bench/RESULTS-player.md`). Past it,
    /// keyframes are evicted uniformly (every other one, then every other of those…); a
    /// seek to an evicted one replays from its predecessor.
    pub budget_bytes: usize,
}

impl Default for IndexPolicy {
    fn default() -> Self {
        IndexPolicy {
            every_bytes: 256 * 1024,
            every_us: 30_000_000,
            budget_bytes: 32 << 20,
        }
    }
}

/// A resume point: the screen once events `0..event` are applied.
#[derive(Debug, Clone)]
pub struct Keyframe {
    /// Number of events applied.
    pub event: u64,
    /// Time of the last applied event, µs.
    pub t_us: u64,
    /// Drawn output bytes applied.
    pub out_bytes: u64,
    /// Estimated bytes of the screen: a clone, or its compact form ([`Snapshot`]).
    pub bytes: usize,
    /// The screen, or `None` once evicted.
    pub screen: Option<Snapshot>,
}

/// What an [`IndexBuilder`] produced since the last [`IndexBuilder::take`]; merge it into
/// the shared [`Index`] with [`Index::merge`].
#[derive(Debug, Default)]
pub struct Delta {
    /// Events fed to a builder that takes keyframes / collects the transcript (`None`: it
    /// does not).
    kf_events: Option<u64>,
    tr_events: Option<u64>,
    keyframes: Vec<Keyframe>,
    /// Scrolled-off rows: (event, end of its text in `text`).
    rows: Vec<(u64, usize)>,
    text: String,
    out_bytes: u64,
}

/// Keyframes and transcript of one recording (see the module docs).
#[derive(Debug)]
pub struct Index {
    policy: IndexPolicy,
    size: (u16, u16),
    keyframes: Vec<Keyframe>,
    used: usize,
    stride: usize,
    transcript: Transcript,
    events: u64,
    transcript_events: u64,
    out_bytes: u64,
    rebuilt: Mutex<Vec<(u64, Arc<vt100::Screen>)>>,
}

/// Keyframes rebuilt after eviction that are kept (most recent first).
const REBUILT_CACHE: usize = 4;

impl Index {
    /// An empty index for a recording whose header says `cols`×`rows`.
    pub fn new(
        cols: u16,
        rows: u16,
        policy: IndexPolicy,
        codec: Option<Box<dyn BlockCodec>>,
    ) -> Index {
        Index {
            policy,
            size: (cols, rows),
            keyframes: Vec::new(),
            used: 0,
            stride: 1,
            transcript: Transcript::new(codec),
            events: 0,
            transcript_events: 0,
            out_bytes: 0,
            rebuilt: Mutex::new(Vec::new()),
        }
    }

    /// Events indexed so far (seeks beyond this replay from the last keyframe).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Events whose scrolled-off rows are in the transcript (the transcript may be built by
    /// a builder of its own, behind the keyframes: [`IndexBuilder::with_parts`]).
    pub fn transcript_events(&self) -> u64 {
        self.transcript_events
    }

    /// Drawn output bytes indexed so far.
    pub fn out_bytes(&self) -> u64 {
        self.out_bytes
    }

    /// The transcript of scrolled-off rows.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// All keyframes, evicted ones included (with `screen: None`).
    pub fn keyframes(&self) -> &[Keyframe] {
        &self.keyframes
    }

    /// Bytes held by keyframe screens.
    pub fn keyframe_bytes(&self) -> usize {
        self.used
    }

    /// Add what a builder produced.
    pub fn merge(&mut self, d: Delta) {
        let mut start = 0;
        for (event, end) in d.rows {
            self.transcript.push(event, &d.text[start..end]);
            start = end;
        }
        for mut kf in d.keyframes {
            let i = self.keyframes.len();
            if !i.is_multiple_of(self.stride) {
                kf.screen = None;
            } else {
                self.used += kf.bytes;
            }
            self.keyframes.push(kf);
            while self.used > self.policy.budget_bytes && self.stride < usize::MAX / 2 {
                self.stride *= 2;
                let stride = self.stride;
                for (j, k) in self.keyframes.iter_mut().enumerate() {
                    if !j.is_multiple_of(stride) && k.screen.take().is_some() {
                        self.used -= k.bytes;
                    }
                }
            }
        }
        if let Some(n) = d.kf_events {
            self.events = self.events.max(n);
            self.out_bytes = self.out_bytes.max(d.out_bytes);
        }
        if let Some(n) = d.tr_events {
            self.transcript_events = self.transcript_events.max(n);
        }
    }

    /// The best place to start replaying to reach "events `0..target` applied": the event
    /// count at that point and its screen (`None`: a blank screen of the header's size at
    /// event 0). Uses a rebuilt keyframe when one is cached.
    pub fn resume_point(&self, target: u64) -> (u64, Option<Snapshot>) {
        let n = self.keyframes.partition_point(|k| k.event <= target);
        let mut best: (u64, Option<Snapshot>) = (0, None);
        for k in self.keyframes[..n].iter().rev() {
            if let Some(s) = &k.screen {
                best = (k.event, Some(s.clone()));
                break;
            }
        }
        if let Ok(cache) = self.rebuilt.lock() {
            for (ev, s) in cache.iter() {
                if *ev <= target && *ev > best.0 {
                    best = (*ev, Some(Snapshot::Full(s.clone())));
                }
            }
        }
        best
    }

    /// The evicted keyframe that a seek to `target` would have used, if any: its event.
    fn evicted_before(&self, target: u64) -> Option<u64> {
        let n = self.keyframes.partition_point(|k| k.event <= target);
        let k = self.keyframes[..n].last()?;
        k.screen.is_none().then_some(k.event)
    }

    /// An emulator with events `0..target` applied: resume from the nearest keyframe, then
    /// replay with `src`. Events past the end of `src` are not applied.
    pub fn seek(&self, target: u64, src: &dyn EventSource) -> Emulator {
        let rebuild = self.evicted_before(target);
        let (start, screen) = self.resume_point(target);
        let mut emu = match &screen {
            Some(s) => s.restore(),
            None => Emulator::new(self.size.0, self.size.1),
        };
        match rebuild {
            // Rebuild the evicted keyframe on the way and keep it for the next seek.
            Some(kf_event) if kf_event > start => {
                replay(&mut emu, src, start, kf_event);
                if emu.is_ground() {
                    if let Ok(mut cache) = self.rebuilt.lock() {
                        cache.insert(0, (kf_event, Arc::new(emu.screen().clone())));
                        cache.truncate(REBUILT_CACHE);
                    }
                }
                replay(&mut emu, src, kf_event, target);
            }
            _ => replay(&mut emu, src, start, target),
        }
        emu
    }
}

/// Random access to a recording's events (implemented by the player over the file; by
/// tests over a `Vec`). Events are numbered from 0 in file order, `b` events folded in.
pub trait EventSource {
    /// Events available now (grows while a live recording is followed).
    fn len(&self) -> u64;
    /// True when there are no events.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Call `f(index, event)` for events `start..` in order until it returns false.
    fn visit(&self, start: u64, f: &mut dyn FnMut(u64, Event<'_>) -> bool);
}

/// Apply events `from..to` of `src` to `emu`.
pub fn replay(emu: &mut Emulator, src: &dyn EventSource, from: u64, to: u64) {
    if from >= to {
        return;
    }
    src.visit(from, &mut |i, ev| {
        if i >= to {
            return false;
        }
        emu.apply(&ev);
        i + 1 < to
    });
}

/// Builds an [`Index`] in one forward pass: feed every event in order, and merge
/// [`IndexBuilder::take`] into the index now and then.
#[derive(Debug)]
pub struct IndexBuilder {
    emu: Emulator,
    keyframes: bool,
    transcript: bool,
    policy: IndexPolicy,
    next: u64,
    out_bytes: u64,
    since_bytes: u64,
    last_kf_us: u64,
    delta: Delta,
}

impl IndexBuilder {
    /// A builder of keyframes and transcript for a recording whose header says
    /// `cols`×`rows`.
    pub fn new(cols: u16, rows: u16, policy: IndexPolicy) -> IndexBuilder {
        IndexBuilder::with_parts(cols, rows, policy, true, true)
    }

    /// A builder of only the keyframes, or only the transcript, or both. The two parts can
    /// be built by two builders on two threads: keyframes (what makes the recording
    /// seekable) need the screen only, while the transcript also formats every row that
    /// scrolls off (about as costly again on scrolling text).
    pub fn with_parts(
        cols: u16,
        rows: u16,
        policy: IndexPolicy,
        keyframes: bool,
        transcript: bool,
    ) -> IndexBuilder {
        let mut emu = Emulator::new(cols, rows);
        emu.collect_scrolled(transcript);
        IndexBuilder {
            emu,
            keyframes,
            transcript,
            policy,
            next: 0,
            out_bytes: 0,
            since_bytes: 0,
            last_kf_us: 0,
            delta: Delta::default(),
        }
    }

    /// Index of the next event expected.
    pub fn next_event(&self) -> u64 {
        self.next
    }

    /// Feed event `self.next_event()`.
    pub fn feed(&mut self, ev: &Event<'_>) {
        let idx = self.next;
        self.emu.apply(ev);
        self.next += 1;
        if ev.kind.is_drawn() {
            self.out_bytes += ev.data.len() as u64;
            self.since_bytes += ev.data.len() as u64;
        }
        let delta = &mut self.delta;
        self.emu.drain_scrolled(|text, alt| {
            if !alt {
                delta.text.push_str(text);
                delta.rows.push((idx, delta.text.len()));
            }
        });
        if !self.keyframes {
            self.delta.tr_events = Some(self.next);
            return;
        }
        let due = self.since_bytes >= self.policy.every_bytes
            || (self.since_bytes > 0
                && ev.t_us.saturating_sub(self.last_kf_us) >= self.policy.every_us);
        if due && self.emu.is_ground() {
            let snap = Snapshot::of(&self.emu);
            let bytes = if snap.is_compact() {
                snap.bytes()
            } else {
                self.emu.screen_bytes()
            };
            self.delta.keyframes.push(Keyframe {
                event: self.next,
                t_us: ev.t_us,
                out_bytes: self.out_bytes,
                bytes,
                screen: Some(snap),
            });
            self.since_bytes = 0;
            self.last_kf_us = ev.t_us;
        }
        self.delta.kf_events = Some(self.next);
        if self.transcript {
            self.delta.tr_events = Some(self.next);
        }
        self.delta.out_bytes = self.out_bytes;
    }

    /// What was built since the last call.
    pub fn take(&mut self) -> Delta {
        let (kf, tr, out_bytes) = (
            self.delta.kf_events,
            self.delta.tr_events,
            self.delta.out_bytes,
        );
        let d = std::mem::take(&mut self.delta);
        self.delta.kf_events = kf;
        self.delta.tr_events = tr;
        self.delta.out_bytes = out_bytes;
        d
    }
}
