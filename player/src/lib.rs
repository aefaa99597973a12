//! sealcast reader side: verification of sealed recordings, event decoding, replay and export.
//!
//! Flow: compressed bytes → [`verify_bytes`] (container, chain, checkpoints → [`Report`]) and
//! [`Reader`] (events with exact bytes) → replay/export.

mod read;
mod verify;

pub use read::{ReadError, Reader};
pub use verify::{verify_bytes, Divergence, Report, Status, Tail};
