//! Time sources, injected so the recorder core is testable without real time.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A clock giving monotonic time for event intervals and wall time for checkpoints.
pub trait Clock: Send {
    /// Monotonic microseconds since an arbitrary, fixed origin.
    fn mono_us(&self) -> u64;
    /// Wall-clock Unix microseconds.
    fn wall_us(&self) -> u64;
}

/// The real clocks: [`Instant`] and [`SystemTime`].
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// Clock whose monotonic origin is now.
    pub fn new() -> Self {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn mono_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    fn wall_us(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    }
}
