//! sealcast reading: everything that reads a sealed recording back, with what verification
//! says about it.
//!
//! - [`Recording`]: a recording's bytes, read or memory-mapped from a regular file opened
//!   without blocking ([`open_regular`]); [`ReceiptFile`] its seal receipt.
//! - [`verify_bytes`] / [`verify_recording`]: container → lines → chain → checkpoints → one
//!   [`Report`] with a [`Status`] decided by the precedence of SPEC §7.1; [`exit_code`] is the
//!   exit policy of SPEC §7 for files and buckets alike.
//! - [`Reader`]: the events (`b` bytes folded in) with absolute times, each a [`ReadEvent`]
//!   with its [`Coverage`]: read with a trust store ([`Reader::verifying`]) a region's events
//!   come out once its checkpoint was checked, by the same walk as `verify`, and only those
//!   a verified checkpoint covers are `Verified` ([`VerifiedEvent`], which only the reader
//!   builds); without one, `Unchecked`. [`CheckedLines`] gives the raw lines the same way,
//!   each checked by [`sealcast_format::EventRules`] as `verify` checks them.
//! - [`inspect`]: the statistics `sealcast info` shows ([`Stats`]).
//! - [`spool`]: the read side of the spool protocol (recorder alive, last checkpoint,
//!   receipt).
//!
//! Depends on `sealcast-format` and `sealcast-signer` only (of the workspace); it writes
//! nothing and never panics on input.
#![warn(missing_docs)]

mod inspect;
mod read;
mod recording;
pub mod spool;
mod verify;

pub use inspect::{inspect, Stats};
pub use read::{
    CheckedLine, CheckedLines, Coverage, FrameObserver, ReadError, ReadEvent, Reader, StreamEnd,
    VerifiedEvent,
};
pub use recording::{kind_name, open_regular, read_regular, OpenError, ReceiptFile, Recording};
pub use verify::{
    exit_code, verify_bytes, verify_recording, Context, Divergence, Receipt, Report, Status, Tail,
};
