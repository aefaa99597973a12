//! Timed replay of a recording's output (`sealcast play`).
//!
//! Timing model: every event (of any code) advances the recording clock by its gap from the
//! previous event, capped at the idle limit; only `o` events are written. Before writing an
//! `o` event the player asks the injected sleeper to wait until `capped time / speed` (the
//! request is the difference to the previous target, so rounding never accumulates). The
//! sleeper is a parameter so tests can record the requested waits instead of sleeping, and so
//! the CLI can correct for the time spent writing.

use std::io::Write;
use std::time::Duration;

use crate::export::{ReplayError, StreamEnd};
use crate::read::Reader;

/// How to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayOptions {
    /// Speed factor: 2.0 plays twice as fast. Must be finite and > 0.
    pub speed: f64,
    /// Longest pause between two events, microseconds of recording time (before the speed
    /// factor). `None`: the header's `idle_time_limit`, else no limit.
    pub idle_limit_us: Option<u64>,
}

impl Default for PlayOptions {
    fn default() -> Self {
        PlayOptions {
            speed: 1.0,
            idle_limit_us: None,
        }
    }
}

/// Replay the `o` events of `reader` to `out` with their recorded timing: exact bytes (`b`
/// extension data substituted), `out` flushed after each event. Waits are requested from
/// `sleeper` (zero waits are not requested).
///
/// # Errors
/// [`ReplayError::Options`] for a speed that is not finite and positive (nothing written);
/// [`ReplayError::Io`] from `out`; [`ReplayError::Read`] at the first malformed line (the
/// events before it have been written).
pub fn play(
    reader: Reader<'_>,
    out: &mut impl Write,
    opts: PlayOptions,
    sleeper: &mut impl FnMut(Duration),
) -> Result<StreamEnd, ReplayError> {
    if !(opts.speed.is_finite() && opts.speed > 0.0) {
        return Err(ReplayError::Options(format!(
            "speed must be a positive number, not {}",
            opts.speed
        )));
    }
    let mut reader = reader;
    let limit = opts.idle_limit_us.or_else(|| {
        reader
            .header()
            .idle_time_limit
            .filter(|l| l.is_finite() && *l >= 0.0)
            .map(|l| (l * 1_000_000.0).round() as u64)
    });
    let mut prev_us = 0u64; // recording time of the previous event
    let mut virtual_us = 0u64; // recording time with gaps capped
    let mut slept_us = 0u64; // wall time requested so far
    for ev in reader.by_ref() {
        let ev = ev?;
        let gap = ev.time_us.saturating_sub(prev_us);
        prev_us = prev_us.max(ev.time_us);
        virtual_us += limit.map_or(gap, |l| gap.min(l));
        if ev.code != "o" {
            continue;
        }
        let target = (virtual_us as f64 / opts.speed).round() as u64;
        if target > slept_us {
            sleeper(Duration::from_micros(target - slept_us));
            slept_us = target;
        }
        out.write_all(&ev.bytes)?;
        out.flush()?;
    }
    out.flush()?;
    Ok(StreamEnd::of_reader(&reader))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::cat;
    use crate::export::test_support::{header, recording, recording_with};

    fn file() -> Vec<u8> {
        recording(|w, t| {
            t.set(1_000_000);
            w.output(b"a").unwrap();
            t.set(1_500_000);
            w.output(b"b\xff").unwrap();
            t.set(31_500_000);
            w.resize(10, 5).unwrap(); // not written, but time passes
            t.set(32_000_000);
            w.output(b"c").unwrap();
            w.output(b"d").unwrap(); // same instant: no wait
        })
    }

    fn run(data: &[u8], opts: PlayOptions) -> (Vec<u8>, Vec<u64>) {
        let mut out = Vec::new();
        let mut sleeps = Vec::new();
        let end = play(
            Reader::open(data).unwrap(),
            &mut out,
            opts,
            &mut |d: Duration| sleeps.push(d.as_micros() as u64),
        )
        .unwrap();
        assert_eq!(end, StreamEnd::Complete);
        (out, sleeps)
    }

    #[test]
    fn original_timing_and_exact_bytes() {
        let f = file();
        let (out, sleeps) = run(&f, PlayOptions::default());
        assert_eq!(out, b"ab\xffcd");
        assert_eq!(sleeps, [1_000_000, 500_000, 30_500_000]);
        let mut catted = Vec::new();
        cat(Reader::open(&f).unwrap(), &mut catted).unwrap();
        assert_eq!(out, catted);
    }

    #[test]
    fn speed_scales_every_wait() {
        let opts = PlayOptions {
            speed: 2.0,
            idle_limit_us: None,
        };
        let (_, sleeps) = run(&file(), opts);
        assert_eq!(sleeps, [500_000, 250_000, 15_250_000]);
        // Rounding does not accumulate: the total is the scaled total.
        let opts = PlayOptions {
            speed: 3.0,
            idle_limit_us: None,
        };
        let (_, sleeps) = run(&file(), opts);
        assert_eq!(sleeps.iter().sum::<u64>(), 10_666_667);
    }

    #[test]
    fn idle_limit_caps_each_gap_before_speed() {
        // Gaps: 1.0 (→0.8), 0.5, 30.0 to the resize (→0.8), 0.5 to "c".
        let opts = PlayOptions {
            speed: 1.0,
            idle_limit_us: Some(800_000),
        };
        let (_, sleeps) = run(&file(), opts);
        assert_eq!(sleeps, [800_000, 500_000, 1_300_000]);
        let opts = PlayOptions {
            speed: 10.0,
            idle_limit_us: Some(800_000),
        };
        let (_, sleeps) = run(&file(), opts);
        assert_eq!(sleeps, [80_000, 50_000, 130_000]);
    }

    #[test]
    fn header_idle_time_limit_applies_unless_overridden() {
        let mut h = header();
        h.idle_time_limit = Some(2.0);
        let f = recording_with(h, |w, t| {
            t.set(10_000_000);
            w.output(b"late").unwrap();
        });
        let (_, sleeps) = run(&f, PlayOptions::default());
        assert_eq!(sleeps, [2_000_000]);
        let opts = PlayOptions {
            speed: 1.0,
            idle_limit_us: Some(5_000_000),
        };
        let (_, sleeps) = run(&f, opts);
        assert_eq!(sleeps, [5_000_000]);
    }

    #[test]
    fn rejects_bad_speed() {
        let f = file();
        for speed in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let opts = PlayOptions {
                speed,
                idle_limit_us: None,
            };
            let mut out = Vec::new();
            let r = play(Reader::open(&f).unwrap(), &mut out, opts, &mut |_| {});
            assert!(matches!(r, Err(ReplayError::Options(_))), "{speed}");
            assert!(out.is_empty());
        }
    }
}
