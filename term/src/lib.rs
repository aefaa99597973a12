//! sealcast terminal interpretation, sans I/O: no files, threads or terminals here.
//!
//! - [`Emulator`]: a recording's events drawn on a `vt100::Screen` (vt100 0.18) at the
//!   recorded size, `r` events resizing it; rows that scroll off go to the [`Transcript`].
//! - [`GroundTracker`]: where the parser holds no hidden state, so a cloned screen is a
//!   faithful resume point.
//! - [`Index`] / [`IndexBuilder`]: keyframes (screen clones at ground points, every
//!   256 KiB of output or 30 s, within a memory budget) and the transcript, built in one
//!   pass; [`Index::seek`] reaches any event by replaying at most one keyframe interval.
//! - [`Search`]: where a regex appears on the screen over time, in scrolled-off rows, or in
//!   the raw output bytes.
//!
//! Events come from an [`EventSource`] the caller implements (the player reads frames of a
//! memory-mapped recording on demand). Background: `anchors-player.md` §2, §5.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod emulator;
mod ground;
mod index;
mod search;
mod snapshot;
mod transcript;

pub use emulator::{parse_resize, Emulator, Event, Kind, MAX_SIDE};
pub use ground::GroundTracker;
pub use index::{replay, Delta, EventSource, Index, IndexBuilder, IndexPolicy, Keyframe};
pub use regex;
pub use search::{screen_matches, Direction, Hit, Place, Search, Step};
pub use snapshot::{canonical_state, Snapshot};
pub use transcript::{BlockCodec, Row, Transcript, BLOCK_BYTES};
pub use vt100;
