//! sealcast database-query sessions: a recording proxy for the PostgreSQL and MySQL/MariaDB
//! wire protocols.
//!
//! One job: relay a client's database connection from a private Unix socket to the real
//! server (TLS with certificate and host-name verification by default) and write every
//! statement, its outcome and the connection's life as `d` events (format-spec/SPEC.md §11)
//! into a sealed recording, **before** the statement is forwarded (write-ahead, fail-closed).
//!
//! Layout:
//! - [`pg`] and [`mysql`]: sans-I/O framers and per-connection state machines (`feed` bytes,
//!   get events back; no sockets inside), fuzzed in `fuzz/`.
//! - [`event`]: the `d` event builder (exact key order of SPEC §11), [`sql`]: the SQL lexer
//!   (statement count, password-literal redaction), both pure.
//! - [`sink`]: [`EventSink`], the only contact with the recording side, and
//!   [`sink::SealedSink`], its one adapter over `sealcast_writer::SealedWriter`.
//! - [`relay`]: the tokio relay (bounded buffers, backpressure, tokio-rustls upstream).
//! - [`config`]: the `[db.<name>]` target tables of `sealcast.toml`.
//! - [`queries`]: one row per statement out of a recording's `d` events (`sealcast queries`).

pub mod access;
pub mod config;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod mysql;
pub mod pg;
pub mod queries;
pub mod relay;
pub mod sink;
pub mod sql;
mod tls;

pub use config::{Credentials, DbConfig, ParamPolicy, Protocol, Target, TlsMode};
pub use sink::{EventSink, SealedSink, SinkError};
