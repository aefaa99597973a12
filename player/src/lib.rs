//! sealcast headless replay and export, over the events [`sealcast_reader`] reads.
//!
//! Flow: compressed bytes → [`sealcast_reader::Reader`] (events with exact bytes) → replay
//! ([`play()`]) and export ([`cat`], [`write_v3`], [`write_v2`], [`write_txt`]). [`commands`]
//! turns the `c` and `p` events into the commands report (SPEC §2.4.5). Verification, the line
//! rules and `info`'s statistics are `sealcast-reader`'s.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod commands;
mod export;
mod play;

pub use export::{cat, v2_header, write_txt, write_v2, write_v3, ReplayError, TextConverter};
pub use play::{play, PlayOptions, Played, MAX_WAIT_US};
