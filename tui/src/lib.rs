//! sealcast's terminal player (`sealcast play` on a terminal): a ratatui + crossterm app.
//!
//! - [`App`] is the state; [`App::update`] applies an [`Action`] (a key, a tick of an
//!   injected clock, a verification result) without I/O; [`ui::render`] draws it.
//! - [`Recording`] reads a memory-mapped `.cast.zst` frame by frame, on demand; [`Shared`]
//!   pairs it with the `sealcast-term` seek index built on a background thread.
//! - [`run()`] is the event loop and [`TerminalGuard`] restores the terminal (raw mode,
//!   alternate screen, cursor) on every exit path, panics and SIGTERM included.
//!
//! Verification comes in as a [`VerifySummary`] (the CLI converts a verifying
//! `sealcast_reader` read: the report, and each event's coverage); events carry a
//! [`Verification`] state so nothing is drawn as verified before its checkpoint was checked,
//! and nothing the reader did not call verified is drawn as verified.

pub mod app;
pub mod library;
pub mod model;
pub mod recording;
pub mod rows;
pub mod run;
pub mod shared;
pub mod terminal;
pub mod ui;

pub use app::{Action, App, Effect, Player, PlayerOptions};
pub use library::{Library, LibraryRow, RowUpdate};
pub use model::{
    frame_digest, parse_time, FrameDigest, Outcome, PanelKind, PanelRow, Verification,
    VerifySummary,
};
pub use recording::{Meta, OpenError, Recording, RecordingBytes};
pub use rows::{CommandsOverlay, MetaEvent};
pub use run::{run, Hooks, Start, VerifyHook};
pub use shared::Shared;
pub use terminal::TerminalGuard;
