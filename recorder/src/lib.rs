//! sealcast recorder: captures a session and writes it as a sealed recording.
//!
//! The writing side ([`SealedWriter`], its [`Clock`], the [`Durable`] sinks, [`boundary`],
//! [`archive`], [`sink::FailOpen`]) is the `sealcast-writer` crate, re-exported here under
//! its old paths. The relay engine ([`relay`]) runs the one writer loop of a session; its
//! sources, the PTY layer ([`pty`]) and the pipe layer for sessions without a terminal
//! ([`pipes`]), are thin shells around it; [`spawn`] starts a child exactly as described
//! (complete environment, user switch before `exec`), and [`sink::FailOpen`] keeps a session
//! going unrecorded after a recording error. [`cmdmeta`] holds the parts of command-level
//! metadata (shell hooks, OSC 133 marks, process observation; SPEC §2.4).

pub use sealcast_writer::{archive, boundary, sink};
pub mod cmdmeta;
pub mod pipes;
pub mod pty;
pub mod relay;
pub mod spawn;
pub mod sys;
#[cfg(test)]
mod test_support;
mod wake;

pub use sealcast_writer::{
    CheckpointPolicy, Clock, Closed, Durable, FailOpen, SealedWriter, SyncedFile, SystemClock,
    WriteEvent,
};
pub use spawn::ChildCommand;
