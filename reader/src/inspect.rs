//! What `sealcast info` shows about a recording: header, counts, timing and the first bad
//! line, gathered without verification by the same line reader as every other command.

use std::collections::BTreeMap;

use sealcast_format::{EventKind, Header};

use crate::read::{CheckedLines, ReadError, StreamEnd};

/// What `sealcast info` reports about a recording, gathered without verification.
#[derive(Debug, Clone)]
pub struct Stats {
    /// The header (line 0).
    pub header: Header,
    /// Size of the compressed file, bytes.
    pub compressed_bytes: u64,
    /// Decompressed bytes of the complete lines decoded (LFs included).
    pub decompressed_bytes: u64,
    /// Complete lines decoded, header included.
    pub lines: u64,
    /// zstd data frames found complete by the frame scan (one that decodes with an error
    /// is counted; a truncated last one is not: see `end`).
    pub data_frames: u64,
    /// Checkpoint frames seen (not verified).
    pub checkpoint_frames: u64,
    /// Time of the last event, microseconds since the start: the sum of all intervals,
    /// saturating at `u64::MAX` (a sum of 10⁹ s intervals can pass it).
    pub duration_us: u64,
    /// The longest single interval: (0-based line, microseconds).
    pub longest_interval: Option<(u64, u64)>,
    /// Wall-clock time from the header's `start_us` to the `time` of the last checkpoint
    /// frame (unverified), microseconds, when both exist. Intervals come from a monotonic
    /// clock that does not run faster than the wall clock, so a `duration_us` beyond this
    /// (plus a second of slack) means the intervals are not real time.
    pub clock_span_us: Option<u64>,
    /// Event lines per code, as stored (so `b` extension lines are counted under `b`).
    pub events_by_code: BTreeMap<String, u64>,
    /// Data of the last `x` event: the recorded command's exit status.
    pub exit_status: Option<String>,
    /// First line that breaks the rules of SPEC §2.2 (the error `cat`, `export` and `play`
    /// stop at). Lines after it are still counted when they parse.
    pub bad_line: Option<ReadError>,
    /// How the compressed stream ended.
    pub end: StreamEnd,
}

impl Stats {
    /// True when the intervals add up to more than the wall-clock time between the start
    /// and the last checkpoint allows (see [`Stats::clock_span_us`]): at least one interval
    /// is not real time.
    pub fn duration_exceeds_clock(&self) -> bool {
        self.clock_span_us
            .is_some_and(|span| self.duration_us > span.saturating_add(1_000_000))
    }
}

/// Decode a whole recording (`data` is the compressed file) and gather [`Stats`]. Lines are
/// checked by the same rules as in [`Reader`](crate::Reader).
///
/// # Errors
/// [`ReadError`] when no asciicast v3 header can be decoded.
pub fn inspect(data: &[u8]) -> Result<Stats, ReadError> {
    let mut events = CheckedLines::open(data)?;
    let mut s = Stats {
        header: events.header().clone(),
        compressed_bytes: data.len() as u64,
        decompressed_bytes: 0,
        lines: 0,
        data_frames: 0,
        checkpoint_frames: 0,
        duration_us: 0,
        longest_interval: None,
        clock_span_us: None,
        events_by_code: BTreeMap::new(),
        exit_status: None,
        bad_line: None,
        end: StreamEnd::Complete,
    };
    while let Some(checked) = events.next_checked() {
        match checked {
            Ok(c) => {
                let iv = c.event.interval_us;
                s.duration_us = s.duration_us.saturating_add(iv);
                if s.longest_interval.is_none_or(|(_, l)| iv > l) {
                    s.longest_interval = Some((c.line_no, iv));
                }
                if c.event.kind == EventKind::Exit {
                    s.exit_status = Some(c.event.data.clone());
                }
                *s.events_by_code
                    .entry(c.event.kind.code().to_string())
                    .or_default() += 1;
            }
            Err(e) => {
                s.bad_line.get_or_insert(e);
            }
        }
    }
    let lines = &events.lines;
    s.lines = lines.lines_read;
    s.decompressed_bytes = lines.bytes_read;
    s.data_frames = lines.data_frames;
    s.checkpoint_frames = lines.checkpoint_frames;
    s.end = StreamEnd::from_error(lines.truncated());
    let last_time = lines
        .last_checkpoint
        .and_then(|note| sealcast_signer::Checkpoint::parse(note).ok())
        .map(|(cp, _, _)| cp.time_us);
    if let (Some(t), Some(m)) = (last_time, &s.header.sealcast) {
        s.clock_span_us = Some(t.saturating_sub(m.start_us));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read::Reader;
    use sealcast_testkit::{self as testkit, recording};

    /// Reader bug (then player/src/read.rs, `Iterator for Reader::next`): the `Err` for a
    /// malformed line is returned while the event *before* it is still held back in
    /// `pending`, so a consumer that stops at the first error (as any `?` loop does) never
    /// sees that event, and one that goes on receives it after the error, out of order.
    /// Expected: every event before the bad line is yielded before the error.
    #[test]
    fn reader_yields_preceding_event_before_a_line_error() {
        let file = recording(|w, t| {
            t.set(100);
            w.output(b"kept").unwrap();
            t.set(200);
            w.output(b"next").unwrap();
        });
        let bad = testkit::replace_line(&file, 2, b"[0.0, \"o\", 42]");
        let items: Vec<_> = Reader::open(&bad).unwrap().collect();
        assert!(
            matches!(&items[0], Ok(ev) if ev.event().bytes == b"kept"),
            "first item should be the 'kept' event, got {:?}",
            items[0]
        );
        assert!(matches!(&items[1], Err(ReadError::Line { line: 2, .. })));
    }

    /// Intervals of 10⁹ s: the sum saturates instead of overflowing, and `info` can tell it
    /// is more time than passed on the wall clock.
    #[test]
    fn absurd_intervals_saturate_and_are_detected() {
        let file = recording(|w, t| {
            t.set(5_000_000);
            w.output(b"x").unwrap();
        });
        let s = inspect(&file).unwrap();
        assert_eq!(s.duration_us, 5_000_000);
        assert!(!s.duration_exceeds_clock(), "{:?}", s.clock_span_us);
        let huge = br#"[1000000000.000000, "m", ""]"#;
        let bad = testkit::insert_after_header(&file, huge, 20_000);
        let s = inspect(&bad).unwrap();
        assert!(s.bad_line.is_none());
        assert_eq!(s.duration_us, u64::MAX);
        assert_eq!(
            s.longest_interval.map(|(_, us)| us),
            Some(1_000_000_000_000_000)
        );
        assert!(s.duration_exceeds_clock());
        let times: Vec<u64> = Reader::open(&bad)
            .unwrap()
            .map(|e| e.unwrap().event().time_us)
            .collect();
        assert_eq!(times.last(), Some(&u64::MAX));
    }
}
