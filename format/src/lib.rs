//! sealcast v1 codec: the asciicast v3 line layer and the zstd container layer.
//!
//! This crate does no file, terminal or network I/O and no cryptography (that is
//! `sealcast-signer`). Encoders write into `impl std::io::Write` or hand out line slices;
//! decoders take `&[u8]`. Normative description: `format-spec/SPEC.md`.
//!
//! - [`EventEncoder`] turns PTY chunks into canonical event lines (§2.2), keeping output
//!   byte-exact with `b` extension events.
//! - [`FrameCompressor`] packs lines into zstd data frames; [`skippable_frame`] wraps a
//!   checkpoint payload (§1).
//! - [`scan`] walks a compressed file frame by frame; [`decompress_frame`] and
//!   [`decompress_partial`] decode data frames; [`parse_event`] and [`Header`] read lines back;
//!   [`EventRules`] are the line rules every reader applies.
//! - [`CommandEvent`] and [`ProcessEvent`] are the data of the `c` and `p` extension events
//!   (commands the shell claims, processes the recorder saw; §2.4).
//! - [`EventKind`] is the vocabulary of event codes (SPEC §2.5) both sides use.
//! - Shared primitives: [`names`] (recording, receipt and segment names, the session a file
//!   name claims), [`host_id`] (the host-id sanitizer) and [`time`] (UTC civil time, RFC 3339,
//!   `allowed_signers` times).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod cmdmeta;
mod container;
mod error;
mod event;
mod header;
pub mod host_id;
mod kind;
pub mod names;
mod rules;
pub mod time;

pub use cmdmeta::{
    cut_at_char, marker_label, CommandEvent, ProcStart, ProcessEvent, MARKER_LABEL_MAX,
    SHELL_SOURCE,
};
pub use container::{
    decompress_frame, decompress_partial, scan, skippable_frame, Decompressor, Frame,
    FrameCompressor, FrameKind, Scanner, CHECKPOINT_MAGIC, MAX_CHECKPOINT_PAYLOAD,
    MAX_FRAME_CONTENT, ZSTD_MAGIC,
};
pub use error::{ContainerError, ParseError};
pub use event::{
    format_interval, parse_event, write_json_string, Event, EventEncoder, EventLine, StreamDir,
};
pub use header::{Header, SealMeta, SessionInfo, TermInfo};
pub use kind::EventKind;
pub use rules::EventRules;
