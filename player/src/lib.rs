//! sealcast reader side: verification of sealed recordings, event decoding, replay and export.
//!
//! Flow: compressed bytes → [`verify_bytes`] (container, chain, checkpoints → [`Report`]) and
//! [`Reader`] (events with exact bytes) → replay ([`play()`]) and export ([`cat`],
//! [`write_v3`], [`write_v2`], [`write_txt`], [`inspect`]).

mod export;
mod play;
mod read;
mod verify;

pub use export::{
    cat, inspect, v2_header, write_txt, write_v2, write_v3, ReplayError, Stats, StreamEnd,
    TextConverter,
};
pub use play::{play, PlayOptions, Played, MAX_WAIT_US};
pub use read::{ReadError, Reader};
pub use verify::{
    verify_bytes, verify_recording, Context, Divergence, Receipt, Report, Status, Tail,
};
