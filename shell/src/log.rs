//! Logging: `tracing` into journald when it runs (`/run/systemd/journal/socket`), with the
//! syslog identifier `sealcast-shell` and fields prefixed `SEALCAST_` (`SEALCAST_SESSION`,
//! `SEALCAST_USER`, `SEALCAST_SHAPE`, `SEALCAST_PATH`, `SEALCAST_STATUS`…); everything at
//! `info` and above.
//!
//! Without journald, only `warn` and above go to stderr, so the user's session is not
//! cluttered. Events with target [`AUDIT`] are for the log only: the user already got a
//! message of their own on stderr for them.
//!
//! The log level is fixed: nothing in the (user-controlled) environment changes it.

use std::path::Path;

use tracing_subscriber::filter::{filter_fn, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Target of events that are logged but not repeated on stderr.
pub const AUDIT: &str = "sealcast_shell::audit";

/// journald's native socket.
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Install the global subscriber (once; later calls do nothing).
pub fn init() {
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_filter(filter_fn(|m| {
            *m.level() <= tracing::Level::WARN && m.target() != AUDIT
        }));
    let journald = if Path::new(JOURNAL_SOCKET).exists() {
        tracing_journald::layer().ok().map(|l| {
            l.with_syslog_identifier("sealcast-shell".into())
                .with_field_prefix(Some("SEALCAST".into()))
                .with_filter(LevelFilter::INFO)
        })
    } else {
        None
    };
    let journal_active = journald.is_some();
    let _ = tracing_subscriber::registry()
        .with(journald)
        .with((!journal_active).then_some(stderr))
        .try_init();
}
