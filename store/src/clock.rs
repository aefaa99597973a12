//! Wall time for the uploader, injected ([`Clock`]) instead of read from the system where it
//! decides: when a live recording's next segment is due, when a manifest period has passed
//! (heartbeats), the period ends it signs, and Object Lock retain-until dates. Production
//! uses [`SystemClock`]; unit tests a [`ManualClock`] they move; the CLI's test knob
//! `SEALCAST_TEST_NOW` (read only in `src/cmd/upload.rs`) a [`ShiftedClock`].

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall time.
pub trait Clock: Send + Sync + Debug {
    /// Now, Unix microseconds.
    fn now_us(&self) -> u64;

    /// Now, Unix seconds.
    fn now_secs(&self) -> i64 {
        (self.now_us() / 1_000_000) as i64
    }
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64)
    }
}

/// A clock that read `start_us` when it was made and runs at the system's pace from there
/// (the `SEALCAST_TEST_NOW` knob: a test puts a one-shot run at a later time without
/// sleeping; a `--watch` run still sees time pass).
#[derive(Debug, Clone, Copy)]
pub struct ShiftedClock {
    start_us: u64,
    started: Instant,
}

impl ShiftedClock {
    /// A clock reading `start_us` (Unix µs) now.
    pub fn new(start_us: u64) -> ShiftedClock {
        ShiftedClock {
            start_us,
            started: Instant::now(),
        }
    }
}

impl Clock for ShiftedClock {
    fn now_us(&self) -> u64 {
        self.start_us + self.started.elapsed().as_micros() as u64
    }
}

/// A clock that stands still until moved (unit tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `now_us` (Unix µs).
    pub fn new(now_us: u64) -> ManualClock {
        ManualClock(AtomicU64::new(now_us))
    }

    /// Move it forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_micros() as u64, Ordering::SeqCst);
    }

    /// Set it to `now_us`.
    pub fn set(&self, now_us: u64) {
        self.0.store(now_us, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_us(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_us(&self) -> u64 {
        (**self).now_us()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_read_what_they_are_given() {
        let m = ManualClock::new(5_000_000);
        assert_eq!((m.now_us(), m.now_secs()), (5_000_000, 5));
        m.advance(Duration::from_secs(2));
        assert_eq!(m.now_secs(), 7);
        let s = ShiftedClock::new(1_000_000);
        let t = s.now_us();
        assert!((1_000_000..1_000_000 + 60_000_000).contains(&t), "{t}");
        assert!(s.now_us() >= t, "runs forward");
        let sys = SystemClock.now_secs();
        assert!(sys > 1_700_000_000, "{sys}");
    }
}
