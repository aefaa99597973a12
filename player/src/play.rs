//! Timed replay of a recording's output (`sealcast play`).
//!
//! Timing model: every event (of any code) advances the recording clock by its gap from the
//! previous event, capped at the idle limit; only `o` events are written. Before writing an
//! `o` event the player asks the injected sleeper to wait until `capped time / speed` (the
//! request is the difference to the previous target, so rounding never accumulates). No
//! single wait is longer than [`MAX_WAIT_US`] (60 s), whatever the intervals, speed or idle
//! limit say: the parser accepts intervals up to 10⁹ s, and a replay must not sleep them out.
//! A shortened wait drops the rest of that pause (later events keep their spacing) and is
//! counted in [`Played::shortened`]. The sleeper is a parameter so tests can record the
//! requested waits instead of sleeping, and so the CLI can correct for the time spent
//! writing.

use std::io::Write;
use std::time::Duration;

use sealcast_format::EventKind;
use sealcast_reader::{Reader, StreamEnd};

use crate::export::ReplayError;

/// Longest single wait of a replay, microseconds of wall time: 60 s.
pub const MAX_WAIT_US: u64 = 60_000_000;

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Played {
    /// How the compressed stream ended.
    pub end: StreamEnd,
    /// Waits shortened to [`MAX_WAIT_US`].
    pub shortened: u64,
}

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
/// `sleeper` (zero waits are not requested; none longer than [`MAX_WAIT_US`]).
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
) -> Result<Played, ReplayError> {
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
    let mut slept_us = 0u64; // wall time requested so far (shortened waits count in full)
    let mut shortened = 0u64;
    for ev in reader.by_ref() {
        let ev = ev?.into_event();
        let gap = ev.time_us.saturating_sub(prev_us);
        prev_us = prev_us.max(ev.time_us);
        virtual_us = virtual_us.saturating_add(limit.map_or(gap, |l| gap.min(l)));
        if ev.kind != EventKind::Output {
            continue;
        }
        // `as` saturates: a huge quotient is u64::MAX, never undefined.
        let target = (virtual_us as f64 / opts.speed).round() as u64;
        if target > slept_us {
            let wait = target - slept_us;
            if wait > MAX_WAIT_US {
                shortened += 1;
            }
            sleeper(Duration::from_micros(wait.min(MAX_WAIT_US)));
            slept_us = target;
        }
        out.write_all(&ev.bytes)?;
        out.flush()?;
    }
    out.flush()?;
    Ok(Played {
        end: StreamEnd::of_reader(&reader),
        shortened,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::cat;
    use sealcast_testkit::{header, recording, recording_with};

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
        assert_eq!(end.end, StreamEnd::Complete);
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

    /// An interval of 10⁹ s (the parser's maximum) is replayed as one 60 s wait, not slept
    /// out; so is a pause made of many events that each stay under the cap, and a wait that
    /// only a slow speed makes long. The spacing after it is kept.
    #[test]
    fn no_wait_is_longer_than_the_cap() {
        let f = recording(|w, t| {
            w.output(b"a").unwrap();
            t.set(1_000_000_000_000_000);
            w.output(b"b").unwrap();
            t.set(1_000_000_000_500_000);
            w.output(b"c").unwrap();
        });
        let mut out = Vec::new();
        let mut sleeps = Vec::new();
        let played = play(
            Reader::open(&f).unwrap(),
            &mut out,
            PlayOptions::default(),
            &mut |d: Duration| sleeps.push(d.as_micros() as u64),
        )
        .unwrap();
        assert_eq!(out, b"abc");
        assert_eq!(sleeps, [MAX_WAIT_US, 500_000]);
        assert_eq!(played.shortened, 1);

        // Twenty markers 50 s apart, then output: one wait, capped.
        let f = recording(|w, t| {
            for i in 1..=20u64 {
                t.set(i * 50_000_000);
                w.marker("m").unwrap();
            }
            w.output(b"x").unwrap();
        });
        let (_, sleeps) = run(&f, PlayOptions::default());
        assert_eq!(sleeps, [MAX_WAIT_US]);

        // 40 s at speed 0.5 would be 80 s.
        let f = recording(|w, t| {
            t.set(40_000_000);
            w.output(b"x").unwrap();
        });
        let opts = PlayOptions {
            speed: 0.5,
            idle_limit_us: None,
        };
        let (_, sleeps) = run(&f, opts);
        assert_eq!(sleeps, [MAX_WAIT_US]);
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
